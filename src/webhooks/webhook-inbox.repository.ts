import { Injectable } from '@nestjs/common';
import { CombinedWrite, Database, Queryable, prepared } from '../database/database';

/**
 * received  stored, not applied yet: its job (job_id, or the event's own id) is on
 *           the queue, or the relay finds it missing and queues it again
 * processed applied (or found stale / a no-op) in the same transaction as the order change
 * ignored   unknown type or unknown object: recorded, not processed
 * dead      failed every attempt; visible and replayable through the admin API
 */
export type InboxStatus = 'received' | 'processed' | 'ignored' | 'dead';
export const INBOX_STATUSES: InboxStatus[] = ['received', 'processed', 'ignored', 'dead'];

export type InboxSource = 'webhook' | 'reconciler';

/** An event to store: its head, and the payload exactly as received (its signature was checked on these bytes). */
export interface InboxEventInput {
  id: string;
  type: string;
  created: number;
  payload: string;
  source: InboxSource;
}

/** A locked inbox row, as the applier reads it. */
export interface InboxRow {
  id: string;
  payload: string;
  status: InboxStatus;
}

/** A row as operators see it (GET /admin/webhook-events): everything but the payload. */
export interface InboxView {
  id: string;
  type: string;
  eventCreated: number;
  source: string;
  status: InboxStatus;
  attempts: number;
  lastError: string | null;
  outcome: string | null;
  receivedAt: Date;
  processedAt: Date | null;
}

/** What applying an event concluded, for its row. */
export interface InboxMark {
  id: string;
  status: 'processed' | 'ignored';
  outcome: string;
}

/** One INSERT for any number of events: array parameters, so it plans like one row. $6: the job that will carry them (NULL: one job each). */
const INSERT_MANY_SQL = prepared(`INSERT INTO webhook_events (id, type, payload, event_created, source, status, received_at, job_id)
  SELECT id, type, payload, created, source, 'received', now(), $6
  FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[]) AS e(id, type, payload, created, source)
  ON CONFLICT (id) DO NOTHING RETURNING id`);

const LOCK_ROWS = prepared(`SELECT id, payload, status FROM webhook_events WHERE id = ANY($1) ORDER BY id FOR UPDATE`);

/** Unapplied rows and the job that carries each (see InboxRepository.unappliedSince). */
export interface UnappliedRow {
  id: string;
  jobId: string;
}

/** The one owner of `webhook_events` (the inbox): every query on it is a method here. */
@Injectable()
export class InboxRepository {
  constructor(private readonly db: Database) {}

  /**
   * Stores events (ids already there are skipped); returns the ids that were
   * new. The webhook route's batches go through the intake connections, with
   * their lock and statement timeouts; the reconciler's through the main pool.
   */
  async insertMany(events: InboxEventInput[], via: 'intake' | 'main', jobId: string | null = null): Promise<Set<string>> {
    const q = via === 'intake' ? this.db.intake : this.db;
    const rows = await q.query<{ id: string }>(INSERT_MANY_SQL, [
      events.map((e) => e.id),
      events.map((e) => e.type),
      events.map((e) => e.payload),
      events.map((e) => e.created),
      events.map((e) => e.source),
      jobId,
    ]);
    return new Set(rows.map((r) => r.id));
  }

  /** Locks inbox rows in id order: the first lock every application takes (the row lock serializes two jobs for one event). */
  lockRows(tx: Queryable, ids: string[]): Promise<InboxRow[]> {
    return tx.query<InboxRow>(LOCK_ROWS, [ids]);
  }

  /** Adds the applied events' marks to a unit of work's one statement. */
  addMarks(write: CombinedWrite, marks: InboxMark[]): void {
    if (marks.length === 0) return;
    write.add(
      (b) => `UPDATE webhook_events SET status = u.status, outcome = u.outcome, attempts = attempts + 1, last_error = NULL, processed_at = now()
        FROM unnest(${b(marks.map((m) => m.id))}::text[], ${b(marks.map((m) => m.status))}::text[], ${b(marks.map((m) => m.outcome))}::text[])
          AS u(id, status, outcome) WHERE webhook_events.id = u.id`,
    );
  }

  /**
   * Adds a record of what the reconciler applied (a PaymentIntent it
   * retrieved) to a unit of work's statement, so every history entry names
   * the record that caused it.
   */
  addReconcilerRecord(write: CombinedWrite, record: { id: string; payload: string; outcome: string }): void {
    write.add(
      (b) => `INSERT INTO webhook_events (id, type, payload, event_created, source, status, attempts, outcome, received_at, processed_at)
        VALUES (${b(record.id)}, 'reconciler.payment_intent', ${b(record.payload)}, ${b(Math.floor(Date.now() / 1000))}, 'reconciler', 'processed', 1, ${b(record.outcome)}, now(), now())`,
    );
  }

  /** A failed attempt; the last one marks the row dead. Rows already applied are left alone. */
  async recordFailure(id: string, error: string, final: boolean): Promise<void> {
    await this.db.query(
      `UPDATE webhook_events SET attempts = attempts + 1, last_error = $2, status = CASE WHEN $3 THEN 'dead' ELSE status END
       WHERE id = $1 AND status NOT IN ('processed', 'ignored')`,
      [id, error.slice(0, 2000), final],
    );
  }

  /** Newest first, without payloads. */
  async list(status: InboxStatus | undefined, limit: number): Promise<InboxView[]> {
    const rows = await this.db.query<{
      id: string;
      type: string;
      event_created: string;
      source: string;
      status: InboxStatus;
      attempts: number;
      last_error: string | null;
      outcome: string | null;
      received_at: Date;
      processed_at: Date | null;
    }>(
      `SELECT id, type, event_created, source, status, attempts, last_error, outcome, received_at, processed_at FROM webhook_events
        ${status ? 'WHERE status = $2' : ''} ORDER BY received_at DESC LIMIT $1`,
      status ? [limit, status] : [limit],
    );
    return rows.map((r) => ({
      id: r.id,
      type: r.type,
      eventCreated: Number(r.event_created),
      source: r.source,
      status: r.status,
      attempts: r.attempts,
      lastError: r.last_error,
      outcome: r.outcome,
      receivedAt: r.received_at,
      processedAt: r.processed_at,
    }));
  }

  /** Makes a stored event processable again (admin replay) by a job of its own; false when there is no such event. */
  async resetForReplay(id: string): Promise<boolean> {
    const rows = await this.db.query(`UPDATE webhook_events SET status = 'received', processed_at = NULL, job_id = NULL WHERE id = $1 RETURNING id`, [id]);
    return rows.length > 0;
  }

  /** Rows still unapplied that were received longer ago than `olderThanMs`, oldest first, with their job's id (the relay's sweep). */
  async unappliedSince(olderThanMs: number, limit: number): Promise<UnappliedRow[]> {
    const rows = await this.db.query<{ id: string; job_id: string }>(
      `SELECT id, COALESCE(job_id, id) AS job_id FROM webhook_events
        WHERE status = 'received' AND received_at < now() - make_interval(secs => $1::double precision / 1000) ORDER BY received_at LIMIT $2`,
      [olderThanMs, limit],
    );
    return rows.map((r) => ({ id: r.id, jobId: r.job_id }));
  }

  /** Age of the oldest event not yet applied (0 when none) and how many are dead: the scrape's gauges. */
  async lagAndDead(): Promise<{ lagSeconds: number; dead: number }> {
    const [row] = await this.db.query<{ lag: string; dead: string }>(
      `SELECT
         COALESCE(EXTRACT(EPOCH FROM now() - min(received_at) FILTER (WHERE status = 'received')), 0) AS lag,
         count(*) FILTER (WHERE status = 'dead') AS dead
       FROM webhook_events WHERE status IN ('received', 'dead')`,
    );
    return { lagSeconds: Number(row?.lag ?? 0), dead: Number(row?.dead ?? 0) };
  }
}
