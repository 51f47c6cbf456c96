import { createHash } from 'node:crypto';
import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Pool, PoolClient } from 'pg';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';

/** Something SQL can be sent to: the pool (each statement its own transaction) or one open transaction. */
export interface Queryable {
  query<T = Record<string, unknown>>(sql: string | PreparedSql, params?: unknown[]): Promise<T[]>;
}

/** Connections kept apart for the webhook intake (see Database.intake). */
export const INTAKE_POOL_SIZE = 2;
/**
 * The least the main pool needs: the reconciler holds one connection for a
 * whole pass (its session advisory lock) while the pass queries through another.
 */
export const MIN_MAIN_POOL_SIZE = 2;

/** How DATABASE_POOL_SIZE connections are split: the main pool's size, and whether the intake gets its own pool. */
export interface PoolPlan {
  main: number;
  intake: 'own' | 'shared';
}

/**
 * The intake's own pool only when the main pool keeps MIN_MAIN_POOL_SIZE
 * beside it; a smaller total (the embedded PGlite gets 2: one session, served
 * one exchange at a time) is one pool the intake shares, without the intake's
 * timeouts, which are session settings and would apply to every statement
 * there. Either way the pools total DATABASE_POOL_SIZE.
 */
export function planPools(databasePoolSize: number): PoolPlan {
  if (databasePoolSize >= MIN_MAIN_POOL_SIZE + INTAKE_POOL_SIZE) return { main: databasePoolSize - INTAKE_POOL_SIZE, intake: 'own' };
  return { main: databasePoolSize, intake: 'shared' };
}
/** The intake's limits: a locked or stuck table answers 503 (the PSP retries) instead of hanging the PSP's request. */
export const INTAKE_LOCK_TIMEOUT_MS = 2000;
export const INTAKE_STATEMENT_TIMEOUT_MS = 5000;

/**
 * A statement sent by name: each connection parses and analyses it once, then
 * only binds and runs it, and its text is not sent again (PostgreSQL still
 * plans a call anew while custom plans look cheaper than a generic one). For
 * the hot path's statements, whose preparation cost as much as running them
 * (the outbox's: 1.3-2.2 ms to plan, ~2.6 ms to run for 50 events). Their
 * column lists are explicit, so a migration under a running instance only
 * makes PostgreSQL prepare them again.
 */
export interface PreparedSql {
  name: string;
  text: string;
}

/** Names already given, by text: a hot statement is hashed once. Bounded: texts built from values would not belong here. */
const preparedNames = new Map<string, string>();
const MAX_PREPARED_NAMES = 1000;

/** `text` as a named statement (the name is its hash, so the same text always gets the same name). */
export function prepared(text: string): PreparedSql {
  let name = preparedNames.get(text);
  if (name === undefined) {
    name = `settle_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    if (preparedNames.size < MAX_PREPARED_NAMES) preparedNames.set(text, name);
  }
  return { name, text };
}

class Connection implements Queryable {
  /** `byName` false: prepared statements are sent as plain text (see AppConfig.databaseOneSession). */
  constructor(private readonly client: Pick<PoolClient, 'query'> | Pool, private readonly byName: boolean) {}

  async query<T>(sql: string | PreparedSql, params?: unknown[]): Promise<T[]> {
    const result =
      typeof sql === 'string' ? await this.client.query(sql, params)
      : this.byName ? await this.client.query({ name: sql.name, text: sql.text, values: params })
      : await this.client.query(sql.text, params);
    return result.rows as T[];
  }
}

/**
 * The one way repositories reach PostgreSQL: parameterized SQL on the pg pool
 * TypeORM opened (TypeORM itself only runs migrations and the health ping).
 * Repositories take a Queryable, so the same method runs alone or inside a
 * caller's transaction.
 */
@Injectable()
export class Database implements Queryable, OnApplicationShutdown {
  private readonly pool: Pool;
  private readonly main: Connection;
  /** Whether statements may be prepared by name on these connections. */
  private readonly byName: boolean;
  /**
   * A small pool of its own for the webhook intake: the PSP's requests never
   * wait behind order creation or the applier for a connection, and its
   * sessions carry lock and statement timeouts, so a locked table makes the
   * route answer 503 instead of hanging.
   */
  readonly intake: Queryable;
  private readonly intakePool?: Pool;

  constructor(@InjectDataSource() dataSource: DataSource, @Inject(APP_CONFIG) config: AppConfig) {
    this.pool = (dataSource.driver as unknown as { master: Pool }).master;
    this.byName = !config.databaseOneSession;
    this.main = new Connection(this.pool, this.byName);
    if (planPools(config.databasePoolSize).intake === 'shared') {
      this.intake = this.main;
      return;
    }
    // The timeouts are session settings sent when each connection starts: no statement of their own.
    this.intakePool = new Pool({
      connectionString: config.databaseUrl,
      max: INTAKE_POOL_SIZE,
      connectionTimeoutMillis: 5000,
      lock_timeout: INTAKE_LOCK_TIMEOUT_MS,
      statement_timeout: INTAKE_STATEMENT_TIMEOUT_MS,
    });
    // An idle connection the server dropped must not crash the process; the next checkout reconnects.
    this.intakePool.on('error', () => undefined);
    this.intake = new Connection(this.intakePool, this.byName);
  }

  query<T>(sql: string | PreparedSql, params?: unknown[]): Promise<T[]> {
    return this.main.query<T>(sql, params);
  }

  /** Runs `work` in one transaction on one connection; rolls back if it throws. */
  async transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await work(new Connection(client, this.byName));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => (broken = true));
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /**
   * Runs `work` while holding one connection outside any transaction (for a
   * session-level advisory lock); the connection is idle while `work` waits on
   * other I/O and holds no row or table lock.
   */
  async session<T>(work: (session: Queryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      return await work(new Connection(client, this.byName));
    } finally {
      client.release();
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.intakePool?.end().catch(() => undefined);
  }
}

/**
 * Several owners' writes sent as one statement (one round trip on the hot
 * path): each owner adds a data-modifying part that names only its own table,
 * and this joins them as the CTEs of one WITH. Parts see the same snapshot and
 * all commit or none, with the caller's transaction.
 */
export class CombinedWrite {
  private readonly parts: string[] = [];
  private readonly params: unknown[] = [];

  /** `build` gets a function that binds a value and returns its placeholder ($n). */
  add(build: (bind: (value: unknown) => string) => string): void {
    this.parts.push(
      build((value) => {
        this.params.push(value);
        return `$${this.params.length}`;
      }),
    );
  }

  get empty(): boolean {
    return this.parts.length === 0;
  }

  async run(q: Queryable): Promise<void> {
    if (this.parts.length === 0) return;
    // The text depends only on which parts are present (values are bound), so it is one of a few: named.
    await q.query(prepared(`WITH ${this.parts.map((part, i) => `w${i} AS (${part})`).join(', ')} SELECT 1`), this.params);
  }
}
