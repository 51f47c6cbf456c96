import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Authorize now, capture later, and orders that expire: the order's capture
 * method and review reason, the payment's capturable and captured sums and
 * the end of its capture window, and the payments an order did not ask for.
 */
export class ManualCapture1764600000000 implements MigrationInterface {
  name = 'ManualCapture1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE orders ADD COLUMN capture_method text NOT NULL DEFAULT 'automatic' CHECK (capture_method IN ('automatic', 'manual'))`);
    await q.query(`ALTER TABLE orders ADD COLUMN review_reason text`);
    await q.query(`ALTER TABLE payments ADD COLUMN amount_capturable integer NOT NULL DEFAULT 0 CHECK (amount_capturable >= 0)`);
    await q.query(`ALTER TABLE payments ADD COLUMN amount_captured integer CHECK (amount_captured >= 0)`);
    await q.query(`ALTER TABLE payments ADD COLUMN capture_before timestamptz`);
    // The expiry sweep's scan: unpaid orders, oldest first.
    await q.query(`CREATE INDEX orders_unpaid_created_idx ON orders (created_at) WHERE status IN ('pending_payment', 'requires_action', 'payment_failed')`);
    // The expiring-authorizations gauge and GET /orders?status=authorized, soonest first.
    await q.query(`CREATE INDEX payments_capture_before_idx ON payments (capture_before, order_id) WHERE status = 'requires_capture'`);
    await q.query(`
      CREATE TABLE unexpected_payments (
        id text PRIMARY KEY,
        order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
        amount integer NOT NULL CHECK (amount >= 0),
        currency text NOT NULL,
        status text NOT NULL,
        created_at timestamptz NOT NULL
      )`);
    await q.query(`CREATE INDEX unexpected_payments_order_idx ON unexpected_payments (order_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS unexpected_payments`);
    await q.query(`DROP INDEX IF EXISTS payments_capture_before_idx`);
    await q.query(`DROP INDEX IF EXISTS orders_unpaid_created_idx`);
    await q.query(`ALTER TABLE payments DROP COLUMN IF EXISTS capture_before, DROP COLUMN IF EXISTS amount_captured, DROP COLUMN IF EXISTS amount_capturable`);
    await q.query(`ALTER TABLE orders DROP COLUMN IF EXISTS review_reason, DROP COLUMN IF EXISTS capture_method`);
  }
}
