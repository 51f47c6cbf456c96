import { MigrationInterface, QueryRunner } from 'typeorm';

const OPEN_BEFORE = `'requires_payment_method', 'requires_confirmation', 'requires_action', 'processing', 'requires_capture', 'open'`;

/**
 * The reconciler polls only payments the PSP last reported in flight
 * (`processing`, `requires_capture`): their state changes without the
 * customer. One waiting on the customer changes only with an event the Events
 * API lists, or leaves the open set by the unpaid-order expiry, so its rows
 * leave the scan's partial index (named for what it now holds).
 */
export class InFlightPaymentsIndex1764900000000 implements MigrationInterface {
  name = 'InFlightPaymentsIndex1764900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX payments_open_checked_idx`);
    await q.query(`CREATE INDEX payments_in_flight_checked_idx ON payments (checked_at) WHERE status IN ('processing', 'requires_capture')`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX payments_in_flight_checked_idx`);
    await q.query(`CREATE INDEX payments_open_checked_idx ON payments (checked_at) WHERE status IN (${OPEN_BEFORE})`);
  }
}
