import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Each delivery row is written three times (the outbox's insert, the sender's
 * lease, the answer), and each write that is not HOT adds an entry to every
 * index. The (order_id, sequence) index served no query (the sender's
 * "earlier event undelivered?" uses the open index, cascades use the key), and
 * room left in each page (fillfactor 70) lets the lease, which changes no
 * indexed column, update in place without touching the indexes.
 */
export class LighterOrderEventDeliveries1765000000000 implements MigrationInterface {
  name = 'LighterOrderEventDeliveries1765000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS order_event_deliveries_order_idx`);
    await q.query(`ALTER TABLE order_event_deliveries SET (fillfactor = 70)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE order_event_deliveries RESET (fillfactor)`);
    await q.query(`CREATE INDEX IF NOT EXISTS order_event_deliveries_order_idx ON order_event_deliveries (order_id, sequence)`);
  }
}
