import { MigrationInterface, QueryRunner } from 'typeorm';
import { OrderEventClaimFunction1765100000000 } from './1765100000000-order-event-claim-function';

/**
 * The claim tests each candidate for an earlier undelivered event of its line
 * as a lookup of the line's first open sequence, a subquery evaluated per
 * candidate on order_event_deliveries_open_idx (order, endpoint), instead of
 * NOT EXISTS. PostgreSQL turned the NOT EXISTS into an anti-join whose inner
 * side, when the statistics said no delivery was open (a table mostly
 * delivered, analyzed at a quiet time: a shop's usual state), was a scan of
 * every open delivery for each candidate: with 12,000 pending, 0.8 s a claim of
 * 64, and the bench's second flood with delivery saturated PostgreSQL; 1 ms in
 * index order. Same rows claimed: a pending candidate is its line's first open
 * one exactly when no earlier one is open.
 */
export class OrderEventClaimByLine1765400000000 implements MigrationInterface {
  name = 'OrderEventClaimByLine1765400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE OR REPLACE FUNCTION order_event_claim_due(max_rows integer, lease_ms integer, to_endpoints text[])
      RETURNS TABLE (event_id text, endpoint text, attempts integer, retry_from timestamptz, created_at timestamptz, body text)
      LANGUAGE sql VOLATILE
      SET enable_seqscan = off
      SET enable_bitmapscan = off
      SET enable_sort = off
      AS $$
        UPDATE order_event_deliveries d
        SET locked_until = now() + $2 * interval '1 millisecond', attempts = d.attempts + 1, last_attempt_at = now()
        FROM (
          SELECT c.event_id, c.endpoint FROM order_event_deliveries c
          WHERE c.status = 'pending' AND c.next_attempt_at <= now() AND (c.locked_until IS NULL OR c.locked_until <= now()) AND c.endpoint = ANY($3)
            AND c.sequence = (
              SELECT min(b.sequence) FROM order_event_deliveries b
              WHERE b.order_id = c.order_id AND b.endpoint = c.endpoint AND b.status <> 'delivered')
          ORDER BY c.next_attempt_at LIMIT $1
          FOR UPDATE OF c SKIP LOCKED
        ) due, order_events e
        WHERE d.event_id = due.event_id AND d.endpoint = due.endpoint AND e.id = d.event_id
        RETURNING d.event_id, d.endpoint, d.attempts, d.retry_from, e.created_at,
          '{"id":' || to_json(e.id)::text || ',"type":' || to_json(e.type)::text
            || ',"createdAt":"' || to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
            || '","sequence":' || e.sequence || ',"data":' || e.data::text || '}'
      $$`);
  }

  /** Back to the NOT EXISTS form of the earlier migration. */
  async down(q: QueryRunner): Promise<void> {
    await new OrderEventClaimFunction1765100000000().down(q);
    await new OrderEventClaimFunction1765100000000().up(q);
  }
}
