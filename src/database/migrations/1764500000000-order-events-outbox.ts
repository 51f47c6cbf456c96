import { MigrationInterface, QueryRunner } from 'typeorm';

/** The outbox of order events (written with each status change) and their deliveries, one row per endpoint. */
export class OrderEventsOutbox1764500000000 implements MigrationInterface {
  name = 'OrderEventsOutbox1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE order_events (
        id text PRIMARY KEY,
        order_id uuid NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
        sequence integer NOT NULL CHECK (sequence > 0),
        type text NOT NULL,
        -- json, not jsonb: the order view keeps the key order GET /orders/:id shows.
        data json NOT NULL,
        created_at timestamptz NOT NULL,
        UNIQUE (order_id, sequence)
      )`);

    // Live streams look for events committed in the last few seconds.
    await q.query(`CREATE INDEX order_events_created_idx ON order_events (created_at)`);

    await q.query(`
      CREATE TABLE order_event_deliveries (
        event_id text NOT NULL REFERENCES order_events(id) ON DELETE CASCADE,
        endpoint text NOT NULL,
        order_id uuid NOT NULL,
        sequence integer NOT NULL,
        status text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL,
        locked_until timestamptz,
        retry_from timestamptz NOT NULL,
        last_attempt_at timestamptz,
        last_status integer,
        last_error text,
        delivered_at timestamptz,
        PRIMARY KEY (event_id, endpoint)
      )`);
    // The sender's scan: due rows only.
    await q.query(`CREATE INDEX order_event_deliveries_due_idx ON order_event_deliveries (next_attempt_at) WHERE status = 'pending'`);
    // "Is an earlier event of this order still undelivered to this endpoint?", asked for every candidate.
    await q.query(`CREATE INDEX order_event_deliveries_open_idx ON order_event_deliveries (order_id, endpoint, sequence) WHERE status <> 'delivered'`);
    await q.query(`CREATE INDEX order_event_deliveries_order_idx ON order_event_deliveries (order_id, sequence)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS order_event_deliveries`);
    await q.query(`DROP TABLE IF EXISTS order_events`);
  }
}
