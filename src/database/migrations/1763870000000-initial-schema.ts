import { MigrationInterface, QueryRunner } from 'typeorm';

/** Orders, their payment, refunds and history; idempotency keys; the webhook inbox; reconciler state. */
export class InitialSchema1763870000000 implements MigrationInterface {
  name = 'InitialSchema1763870000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE orders (
        id uuid PRIMARY KEY,
        status text NOT NULL,
        amount integer NOT NULL CHECK (amount > 0),
        currency text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
        items jsonb NOT NULL,
        customer_email text NOT NULL,
        amount_refunded integer NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0),
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
      )`);
    // Keyset pagination: newest first, ties broken by id.
    await q.query(`CREATE INDEX orders_created_idx ON orders (created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX orders_status_created_idx ON orders (status, created_at DESC, id DESC)`);

    await q.query(`
      CREATE TABLE payments (
        id text PRIMARY KEY,
        order_id uuid NOT NULL UNIQUE REFERENCES orders(id) ON DELETE CASCADE,
        status text NOT NULL,
        amount integer NOT NULL,
        amount_received integer NOT NULL DEFAULT 0,
        currency text NOT NULL,
        client_secret text NOT NULL,
        last_event_created bigint NOT NULL DEFAULT 0,
        last_event_id text,
        dispute_id text,
        created_at timestamptz NOT NULL,
        checked_at timestamptz NOT NULL
      )`);
    // The reconciler's stale scan reads only payments that can still change on their own.
    await q.query(`
      CREATE INDEX payments_open_checked_idx ON payments (checked_at)
      WHERE status IN ('requires_payment_method', 'requires_confirmation', 'requires_action', 'processing', 'requires_capture')`);

    await q.query(`
      CREATE TABLE refunds (
        id text PRIMARY KEY,
        order_id uuid NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
        payment_intent_id text NOT NULL,
        amount integer NOT NULL CHECK (amount > 0),
        status text NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
      )`);
    await q.query(`CREATE INDEX refunds_order_idx ON refunds (order_id)`);

    await q.query(`
      CREATE TABLE order_status_history (
        id bigserial PRIMARY KEY,
        order_id uuid NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
        from_status text NOT NULL,
        to_status text NOT NULL,
        at timestamptz NOT NULL,
        reason text NOT NULL,
        event_id text
      )`);
    await q.query(`CREATE INDEX order_status_history_order_idx ON order_status_history (order_id, id)`);

    await q.query(`
      CREATE TABLE idempotency_keys (
        key text PRIMARY KEY,
        request_hash text NOT NULL,
        order_id uuid NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
        created_at timestamptz NOT NULL
      )`);

    await q.query(`
      CREATE TABLE webhook_events (
        id text PRIMARY KEY,
        type text NOT NULL,
        payload text NOT NULL,
        event_created bigint NOT NULL,
        source text NOT NULL,
        status text NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        last_error text,
        outcome text,
        received_at timestamptz NOT NULL,
        processed_at timestamptz
      )`);
    // The relay looks only for events stored but never confirmed on the queue.
    await q.query(`CREATE INDEX webhook_events_unqueued_idx ON webhook_events (received_at) WHERE status = 'received'`);
    await q.query(`CREATE INDEX webhook_events_status_idx ON webhook_events (status, received_at DESC)`);

    await q.query(`
      CREATE TABLE reconciler_state (
        name text PRIMARY KEY,
        events_cursor_created bigint NOT NULL DEFAULT 0,
        last_run_at timestamptz,
        last_error text
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const table of ['reconciler_state', 'webhook_events', 'idempotency_keys', 'order_status_history', 'refunds', 'payments', 'orders']) {
      await q.query(`DROP TABLE IF EXISTS ${table}`);
    }
  }
}
