import { Client, Pool } from 'pg';
import type { QueryRunner } from 'typeorm';
import { InitialSchema1763870000000 } from '../../../src/database/migrations/1763870000000-initial-schema';
import { BENCH_AMOUNT, BENCH_CURRENCY } from './stripe-events';

/** Gives a baseline's own database exactly Settle's schema (same tables, same indexes) by running the migration's SQL. */
export async function applySettleSchema(databaseUrl: string): Promise<void> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const runner = { query: (sql: string, params?: unknown[]) => client.query(sql, params).then((r) => r.rows) } as unknown as QueryRunner;
    await new InitialSchema1763870000000().up(runner);
  } finally {
    await client.end();
  }
}

const OPEN_INTENT_STATUS = 'requires_payment_method';

/**
 * Inserts orders [from, from+count) with their payments in two set-based
 * statements: order n is md5('bench-n')::uuid with PaymentIntent pi_bench_n,
 * awaiting payment, created and last checked with the PSP `ageMs` ago (by
 * default just now).
 */
export async function seedOrders(pool: Pool, from: number, count: number, ageMs = 0): Promise<void> {
  const to = from + count - 1;
  const items = JSON.stringify([{ sku: 'BENCH-1', name: 'Bench item', unitAmount: BENCH_AMOUNT, quantity: 1 }]);
  // $6 in both statements: ageMs.
  const at = `now() - make_interval(secs => $6::double precision / 1000)`;
  await pool.query(
    `INSERT INTO orders (id, status, amount, currency, items, customer_email, amount_refunded, created_at, updated_at)
     SELECT md5('bench-' || n)::uuid, 'pending_payment', $3, $4, $5::jsonb, 'bench-' || n || '@example.com', 0, ${at}, ${at}
       FROM generate_series($1::int, $2::int) AS n`,
    [from, to, BENCH_AMOUNT, BENCH_CURRENCY, items, ageMs],
  );
  await pool.query(
    `INSERT INTO payments (id, order_id, status, amount, amount_received, currency, client_secret, last_event_created, created_at, checked_at)
     SELECT 'pi_bench_' || n, md5('bench-' || n)::uuid, $3, $4, 0, $5, 'pi_bench_' || n || '_secret_bench', 0, ${at}, ${at}
       FROM generate_series($1::int, $2::int) AS n`,
    [from, to, OPEN_INTENT_STATUS, BENCH_AMOUNT, BENCH_CURRENCY, ageMs],
  );
  await pool.query('ANALYZE orders; ANALYZE payments');
}

/** Inbox rows stored but not applied yet (neither processed, ignored nor dead), whatever an older Settle called them meanwhile. */
export async function inboxBacklog(pool: Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM webhook_events WHERE status NOT IN ('processed', 'ignored', 'dead')`);
  return Number(rows[0]?.n ?? 0);
}

/** The server's WAL insert position now (every database's writes go through the one WAL). */
export async function walPosition(pool: Pool): Promise<string> {
  const { rows } = await pool.query<{ lsn: string }>(`SELECT pg_current_wal_insert_lsn()::text AS lsn`);
  return rows[0]!.lsn;
}

/** Bytes of WAL written since `from` (a walPosition). */
export async function walSince(pool: Pool, from: string): Promise<number> {
  const { rows } = await pool.query<{ bytes: string }>(`SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::bigint AS bytes`, [from]);
  return Number(rows[0]!.bytes);
}

/** Deletes the orders of [from, from+count) still awaiting payment (with their payments), so later phases see only their own open orders. */
export async function removeUnpaidOrders(pool: Pool, from: number, count: number): Promise<number> {
  const { rowCount } = await pool.query(
    `DELETE FROM orders WHERE status = 'pending_payment' AND id IN (SELECT md5('bench-' || n)::uuid FROM generate_series($1::int, $2::int) AS n)`,
    [from, from + count - 1],
  );
  await pool.query('VACUUM ANALYZE orders, payments');
  return rowCount ?? 0;
}
