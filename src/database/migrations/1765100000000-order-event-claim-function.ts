import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The sender's claim (see OrderEventsRepository.claimDue) as a function that
 * carries its own planner settings. It must walk the due index in
 * next_attempt_at order and stop at the limit. With a backlog that grew after
 * the last ANALYZE (an endpoint that was down, deliveries held back under
 * load), PostgreSQL chose a bitmap scan and a sort over every due row, each
 * tested for an earlier undelivered event: 9 ms a claim for 2,000 due rows
 * against 0.5 ms in index order (measured), and 5-16 ms a claim, tens of times
 * a second, during the bench's flood. The settings apply to this function's
 * statement alone. A later change to the claim replaces the function in a
 * migration of its own.
 */
export class OrderEventClaimFunction1765100000000 implements MigrationInterface {
  name = 'OrderEventClaimFunction1765100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION order_event_claim_due(max_rows integer, lease_ms integer, to_endpoints text[])
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
            AND NOT EXISTS (
              SELECT 1 FROM order_event_deliveries b
              WHERE b.order_id = c.order_id AND b.endpoint = c.endpoint AND b.sequence < c.sequence AND b.status <> 'delivered')
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

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS order_event_claim_due(integer, integer, text[])`);
  }
}
