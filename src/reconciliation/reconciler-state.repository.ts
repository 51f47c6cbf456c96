import { Injectable } from '@nestjs/common';
import { Database } from '../database/database';

/** Key of the advisory lock that elects the one reconciler runner (migrations use 7355608). */
const RECONCILER_LOCK = 7355609;

/** The one owner of `reconciler_state`: where the reconciler got to in the PSP's Events API, kept across restarts. */
@Injectable()
export class ReconcilerStateRepository {
  constructor(private readonly db: Database) {}

  /**
   * Runs `work` if no other runner holds the reconciler lock, else returns
   * 'skipped'. The lock is session-level on one connection that stays idle, in
   * no transaction and holding no row, while `work` calls the PSP.
   */
  async whileElected<T>(work: () => Promise<T>): Promise<T | 'skipped'> {
    return this.db.session(async (session) => {
      const [lock] = await session.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock($1) AS locked`, [RECONCILER_LOCK]);
      if (!lock?.locked) return 'skipped';
      try {
        return await work();
      } finally {
        await session.query(`SELECT pg_advisory_unlock($1)`, [RECONCILER_LOCK]).catch(() => undefined);
      }
    });
  }

  /** `created` (epoch seconds) of the newest PSP event the listing has covered; 0 before the first pass. */
  async readCursor(name: string): Promise<number> {
    await this.db.query(`INSERT INTO reconciler_state (name, events_cursor_created) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING`, [name]);
    const [state] = await this.db.query<{ events_cursor_created: string }>(`SELECT events_cursor_created FROM reconciler_state WHERE name = $1`, [name]);
    return Number(state?.events_cursor_created ?? 0);
  }

  async saveCursor(name: string, created: number): Promise<void> {
    await this.db.query(`UPDATE reconciler_state SET events_cursor_created = $2 WHERE name = $1`, [name, created]);
  }

  /** The pass ran (with the error it met, or none). */
  async recordRun(name: string, error: string | null): Promise<void> {
    await this.db.query(
      `INSERT INTO reconciler_state (name, last_run_at, last_error) VALUES ($1, now(), $2)
       ON CONFLICT (name) DO UPDATE SET last_run_at = now(), last_error = EXCLUDED.last_error`,
      [name, error === null ? null : error.slice(0, 2000)],
    );
  }
}
