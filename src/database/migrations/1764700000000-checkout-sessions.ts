import { MigrationInterface, QueryRunner } from 'typeorm';

const OPEN_BEFORE = `'requires_payment_method', 'requires_confirmation', 'requires_action', 'processing', 'requires_capture'`;

/**
 * Hosted checkout: an order paid on a Checkout Session. Its payment row is
 * keyed by the session id until the session creates its PaymentIntent (then by
 * that), and an open session (status `open`) is checked by the reconciler like
 * an open PaymentIntent.
 */
export class CheckoutSessions1764700000000 implements MigrationInterface {
  name = 'CheckoutSessions1764700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE payments ADD COLUMN checkout_session_id text UNIQUE`);
    await q.query(`ALTER TABLE payments ADD COLUMN checkout_url text`);
    await q.query(`DROP INDEX payments_open_checked_idx`);
    await q.query(`CREATE INDEX payments_open_checked_idx ON payments (checked_at) WHERE status IN (${OPEN_BEFORE}, 'open')`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX payments_open_checked_idx`);
    await q.query(`CREATE INDEX payments_open_checked_idx ON payments (checked_at) WHERE status IN (${OPEN_BEFORE})`);
    await q.query(`ALTER TABLE payments DROP COLUMN IF EXISTS checkout_url, DROP COLUMN IF EXISTS checkout_session_id`);
  }
}
