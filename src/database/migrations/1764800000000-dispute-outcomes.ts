import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Dispute outcomes: the order's dispute as the PSP last reported it (one per
 * charge at Stripe), and the status a won dispute returns the order to.
 */
export class DisputeOutcomes1764800000000 implements MigrationInterface {
  name = 'DisputeOutcomes1764800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE orders ADD COLUMN status_before_dispute text`);
    await q.query(`
      CREATE TABLE disputes (
        id text PRIMARY KEY,
        order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
        status text NOT NULL,
        reason text,
        amount integer NOT NULL CHECK (amount >= 0),
        evidence_due_by timestamptz,
        -- created of the newest event applied to this record (epoch seconds): an older one does not replace it.
        event_created bigint NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL
      )`);
    await q.query(`CREATE INDEX disputes_order_idx ON disputes (order_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS disputes`);
    await q.query(`ALTER TABLE orders DROP COLUMN IF EXISTS status_before_dispute`);
  }
}
