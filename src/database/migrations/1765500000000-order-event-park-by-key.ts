import { MigrationInterface, QueryRunner } from 'typeorm';
import { OrderEventParkBlocked1765300000000 } from './1765300000000-order-event-park-blocked';

/**
 * The parking sweep finds each row it parks by its key. Its last condition,
 * a plain `c.status = 'pending'`, let PostgreSQL reach the rows to update
 * through the pending index; with statistics that say nothing is pending (a
 * table mostly delivered, analysed at a quiet time: a shop's usual state), it
 * walked every pending delivery and, for each, the sweep's 500 candidates: 6 s
 * a sweep with 12,000 deliveries due for over a minute, once a second, just
 * when an endpoint had been down. `status || ''` proves nothing about that
 * partial index, so only the key's index is left: 4 ms. Same rows parked.
 */
export class OrderEventParkByKey1765500000000 implements MigrationInterface {
  name = 'OrderEventParkByKey1765500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE OR REPLACE FUNCTION order_event_park_blocked(max_rows integer, due_for_ms integer, horizon_ms integer, to_endpoints text[])
      RETURNS integer
      LANGUAGE plpgsql VOLATILE
      SET enable_seqscan = off
      SET enable_bitmapscan = off
      SET enable_sort = off
      AS $$
      DECLARE
        parked integer;
      BEGIN
        IF NOT pg_try_advisory_xact_lock(hashtext('order_event_park_blocked')) THEN
          RETURN 0;
        END IF;
        UPDATE order_event_deliveries c
        SET next_attempt_at = w.until
        FROM (
          SELECT s.event_id, s.endpoint,
            CASE WHEN b.status = 'failed' THEN now() + horizon_ms * interval '1 millisecond'
              ELSE LEAST(b.next_attempt_at, now() + horizon_ms * interval '1 millisecond') END AS until
          FROM (
            SELECT d.event_id, d.endpoint, d.order_id, d.sequence FROM order_event_deliveries d
            WHERE d.status = 'pending' AND d.next_attempt_at <= now() - due_for_ms * interval '1 millisecond'
              AND (d.locked_until IS NULL OR d.locked_until <= now()) AND d.endpoint = ANY(to_endpoints)
            ORDER BY d.next_attempt_at LIMIT max_rows
          ) s
          CROSS JOIN LATERAL (
            SELECT e.status, e.next_attempt_at, e.locked_until FROM order_event_deliveries e
            WHERE e.order_id = s.order_id AND e.endpoint = s.endpoint AND e.sequence < s.sequence AND e.status <> 'delivered'
            ORDER BY e.sequence LIMIT 1
          ) b
          -- Blocked by one that failed, or that waits for its own retry (not one being sent now).
          WHERE b.status = 'failed' OR (b.next_attempt_at > now() AND (b.locked_until IS NULL OR b.locked_until <= now()))
        ) w
        WHERE c.event_id = w.event_id AND c.endpoint = w.endpoint
          AND c.status || '' = 'pending' AND c.next_attempt_at <= now() - due_for_ms * interval '1 millisecond';
        GET DIAGNOSTICS parked = ROW_COUNT;
        RETURN parked;
      END
      $$`);
  }

  /** Back to the earlier migration's function. */
  async down(q: QueryRunner): Promise<void> {
    await new OrderEventParkBlocked1765300000000().down(q);
    await new OrderEventParkBlocked1765300000000().up(q);
  }
}
