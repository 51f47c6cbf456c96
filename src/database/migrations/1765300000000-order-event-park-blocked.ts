import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An order's later events wait until its earlier one is delivered; while they
 * wait they are due, and every claim walked past them in the due index (each
 * tested for an earlier undelivered event) before reaching one it could send.
 * After an endpoint was down for hours, or behind an event that failed for
 * good, that walk grew with every event the shop made meanwhile, on every
 * claim (measured: 10,000 orders each with an event in backoff and two
 * behind it, a claim of 64 sendable deliveries took 51 ms; 2.6 ms once they
 * were parked). order_event_park_blocked moves such a waiting delivery's next try to
 * its blocker's (at most `horizon_ms` ahead; a failed blocker has none), so it
 * leaves the due set; recording a delivery brings the order's next one back at
 * once (OrderEventsRepository.recordResults). Only deliveries due for
 * `due_for_ms` are looked at, so a sender keeping up never pays for it, and the
 * claim still checks every delivery it takes: a delivery parked on a stale
 * reading waits at most `horizon_ms`. One parker at a time (an advisory
 * transaction lock), so two processes' sweeps never lock the same rows in
 * different orders; the planner settings keep the walk in index order, as in
 * the claim.
 */
export class OrderEventParkBlocked1765300000000 implements MigrationInterface {
  name = 'OrderEventParkBlocked1765300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION order_event_park_blocked(max_rows integer, due_for_ms integer, horizon_ms integer, to_endpoints text[])
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
          AND c.status = 'pending' AND c.next_attempt_at <= now() - due_for_ms * interval '1 millisecond';
        GET DIAGNOSTICS parked = ROW_COUNT;
        RETURN parked;
      END
      $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS order_event_park_blocked(integer, integer, integer, text[])`);
  }
}
