import { Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Database, Queryable, prepared } from '../database/database';
import type { WrittenTransition } from '../orders/order-events-outbox.port';
import { ClaimedDelivery, DeliveryResult, DeliveryStatus, OrderEventBody } from './order-event.types';

/** The channel every committed order event is announced on (NOTIFY is sent only at commit). */
export const ORDER_EVENTS_CHANNEL = 'settle_order_events';
/**
 * Events announced by one notification, a line each (`<orderId> <sequence>`):
 * one per statement rather than one per event, and within PostgreSQL's
 * 8,000-byte payload limit (a line is at most 36 + 1 + 10 bytes).
 */
const NOTIFY_LINES = 150;

/**
 * Writes the outgoing events of a batch of transitions in one statement, after
 * the writer's own statement wrote the orders, payments and history rows.
 * Each event's `data` is the order view the order aggregate's SQL builds
 * (`views`, from OrderRepository): no round trip to read the rows back. The
 * writer holds every order's row lock, so max(sequence) cannot move under us.
 * The deliveries (one per endpoint) and the NOTIFY that wakes senders and live
 * streams go in the same statement (one notification for up to NOTIFY_LINES
 * events); NOTIFY is delivered only if it commits.
 */
const insertEvents = (views: (batch: string) => string) => `WITH t AS (
    SELECT s.order_id, s.to_status, s.at, s.id, s.n,
      row_number() OVER (PARTITION BY s.order_id ORDER BY s.n) AS k,
      count(*) OVER (PARTITION BY s.order_id) AS in_batch
    FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[]) WITH ORDINALITY AS s(order_id, to_status, at, id, n)
  ), v AS (${views('t')}
  ), last AS (
    SELECT order_id, max(sequence) AS seq FROM order_events WHERE order_id = ANY($1::uuid[]) GROUP BY order_id
  ), ev AS (
    INSERT INTO order_events (id, order_id, sequence, type, created_at, data)
    SELECT t.id, t.order_id, COALESCE(last.seq, 0) + t.k, 'order.' || t.to_status, t.at, v.data
    FROM t JOIN v ON v.n = t.n LEFT JOIN last ON last.order_id = t.order_id
    ORDER BY t.n
    RETURNING id, order_id, sequence, created_at
  ), deliveries AS (
    INSERT INTO order_event_deliveries (event_id, endpoint, order_id, sequence, status, next_attempt_at, retry_from)
    SELECT ev.id, e.endpoint, ev.order_id, ev.sequence, 'pending', ev.created_at, ev.created_at FROM ev CROSS JOIN unnest($5::text[]) AS e(endpoint)
  )
  SELECT pg_notify('${ORDER_EVENTS_CHANNEL}', string_agg(c.line, E'\n'))
  FROM (SELECT ev.order_id || ' ' || ev.sequence AS line, (row_number() OVER () - 1) / ${NOTIFY_LINES} AS chunk FROM ev) c GROUP BY c.chunk`;

/**
 * Leases the due deliveries that head their (order, endpoint) line: pending,
 * not leased, and no earlier event of that order still undelivered to that
 * endpoint, so event n+1 never goes out before n was answered 2xx. SKIP LOCKED
 * lets several senders claim at once without waiting on each other; a row
 * another sender leased meanwhile is re-checked on its new version (READ
 * COMMITTED) and dropped, so no delivery is ever leased twice. Each comes with
 * the body to POST as PostgreSQL writes it (the event's fields, then `data` as
 * stored): the sender neither parses nor re-serializes it. The statement is the
 * function order_event_claim_due (migrations 1765100000000, 1765400000000), which
 * carries the planner settings that keep it in index order under a backlog.
 */
const CLAIM_DUE = prepared(`SELECT event_id, endpoint, attempts, retry_from, created_at, body FROM order_event_claim_due($1, $2, $3)`);

/**
 * Records sends; a result counts only for the attempt that leased the row (a
 * late sender whose lease ran out changes nothing). A delivery that went
 * through brings its order's next one for that endpoint back to due at once,
 * if the sweep had parked it (see PARK_BLOCKED).
 *
 * Each row is found by its key, whatever the statistics say. They usually say
 * no delivery is pending (a table mostly delivered, analysed at a quiet time),
 * and then a plain `status = 'pending'` let PostgreSQL reach the rows through
 * the pending index, hashing every pending delivery to find the few recorded
 * (13 ms a record at 12,000 pending); written as `status || ''` it proves
 * nothing about that partial index, so only the key's index is left. The next
 * delivery of each line is a lookup per recorded row (LATERAL, first open
 * sequence), not a join the planner could turn into a walk of every open
 * delivery per row.
 */
export const RECORD_RESULTS = prepared(`WITH recorded AS (
    UPDATE order_event_deliveries d
    SET status = u.status, next_attempt_at = u.next_at, locked_until = NULL, last_status = u.http_status, last_error = u.error,
      delivered_at = CASE WHEN u.status = 'delivered' THEN now() ELSE d.delivered_at END
    FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::timestamptz[], $6::int[], $7::text[]) AS u(event_id, endpoint, attempt, status, next_at, http_status, error)
    WHERE d.event_id = u.event_id AND d.endpoint = u.endpoint AND d.attempts = u.attempt AND d.status || '' = 'pending'
    RETURNING d.order_id, d.endpoint, d.sequence, d.status
  ), next_up AS (
    SELECT n.event_id, n.endpoint
    FROM recorded r CROSS JOIN LATERAL (
      SELECT o.event_id, o.endpoint FROM order_event_deliveries o
      WHERE o.order_id = r.order_id AND o.endpoint = r.endpoint AND o.sequence > r.sequence AND o.status <> 'delivered'
      ORDER BY o.sequence LIMIT 1
    ) n
    WHERE r.status = 'delivered'
  )
  UPDATE order_event_deliveries n SET next_attempt_at = now()
  FROM next_up WHERE n.event_id = next_up.event_id AND n.endpoint = next_up.endpoint AND n.status || '' = 'pending' AND n.next_attempt_at > now()`);

/**
 * Parks deliveries waiting behind an earlier undelivered event of their order
 * (the function order_event_park_blocked, migration 1765300000000): those due
 * for PARK_AFTER_MS whose blocker waits for its own retry, or failed, get the
 * blocker's next try (at most PARK_HORIZON_MS ahead) and leave the due set the
 * claim walks.
 */
const PARK_BLOCKED = prepared(`SELECT order_event_park_blocked($1, $2, $3, $4) AS parked`);
/** A sender keeping up never leaves a delivery due this long: only the blocked and a backlog are looked at. */
const PARK_AFTER_MS = 30_000;
/** Longest a delivery stays parked before it is looked at again (a reading made stale by a concurrent answer costs at most this). */
const PARK_HORIZON_MS = 60 * 60 * 1000;
/** Most deliveries one sweep looks at. */
const PARK_MAX_ROWS = 500;

/** An outgoing event with its deliveries, as operators see it. */
export interface OrderEventRecord {
  id: string;
  orderId: string;
  type: string;
  sequence: number;
  createdAt: string;
  deliveries: Array<{
    endpoint: string;
    status: DeliveryStatus;
    attempts: number;
    lastAttemptAt: string | null;
    lastAnswer: number | null;
    lastError: string | null;
    nextAttemptAt: string | null;
    deliveredAt: string | null;
  }>;
}

const toIso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

/** The only owner of order_events and order_event_deliveries: one method per query. */
@Injectable()
export class OrderEventsRepository {
  constructor(private readonly db: Database) {}

  /** See insertEvents; runs in the writer's transaction. */
  async insertForTransitions(tx: Queryable, transitions: WrittenTransition[], views: (batch: string) => string, endpoints: string[]): Promise<void> {
    if (transitions.length === 0) return;
    const ids = newEventIds(transitions.length);
    await tx.query(prepared(insertEvents(views)), [
      transitions.map((t) => t.orderId),
      transitions.map((t) => t.to),
      transitions.map((t) => t.at),
      ids,
      endpoints,
    ]);
  }

  /** See CLAIM_DUE; only deliveries to `endpoints` (one dropped from ORDER_EVENTS_URL is no longer posted to; its rows stay pending). */
  async claimDue(limit: number, leaseMs: number, endpoints: string[]): Promise<ClaimedDelivery[]> {
    const list = (await this.db.query(CLAIM_DUE, [limit, leaseMs, endpoints])) as Array<{
      event_id: string;
      endpoint: string;
      attempts: number;
      retry_from: Date;
      created_at: Date;
      body: string;
    }>;
    return list.map((r) => ({
      eventId: r.event_id,
      endpoint: r.endpoint,
      attempt: r.attempts,
      retryFrom: new Date(r.retry_from),
      createdAt: new Date(r.created_at),
      body: r.body,
    }));
  }

  async recordResults(results: DeliveryResult[]): Promise<void> {
    if (results.length === 0) return;
    await this.db.query(RECORD_RESULTS, [
      results.map((r) => r.eventId),
      results.map((r) => r.endpoint),
      results.map((r) => r.attempt),
      results.map((r) => r.status),
      results.map((r) => r.nextAttemptAt),
      results.map((r) => r.httpStatus),
      results.map((r) => r.error),
    ]);
  }

  /** See PARK_BLOCKED; returns how many deliveries were parked (0 while another process parks). */
  async parkBlocked(endpoints: string[], dueForMs = PARK_AFTER_MS): Promise<number> {
    const [row] = (await this.db.query(PARK_BLOCKED, [PARK_MAX_ROWS, dueForMs, PARK_HORIZON_MS, endpoints])) as Array<{ parked: number }>;
    return row?.parked ?? 0;
  }

  /** Newest first; `status` filters on the deliveries' status. */
  async list(filter: { status?: DeliveryStatus; orderId?: string; limit: number }): Promise<OrderEventRecord[]> {
    const rows = (await this.db.query(
      `SELECT e.id, e.order_id, e.type, e.sequence, e.created_at,
         COALESCE(json_agg(json_build_object('endpoint', d.endpoint, 'status', d.status, 'attempts', d.attempts,
           'lastAttemptAt', d.last_attempt_at, 'lastAnswer', d.last_status, 'lastError', d.last_error,
           'nextAttemptAt', CASE WHEN d.status = 'pending' THEN GREATEST(d.next_attempt_at, d.locked_until) END, 'deliveredAt', d.delivered_at)
           ORDER BY d.endpoint) FILTER (WHERE d.event_id IS NOT NULL), '[]') AS deliveries
       FROM order_events e LEFT JOIN order_event_deliveries d ON d.event_id = e.id
       WHERE ($1::uuid IS NULL OR e.order_id = $1)
         AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM order_event_deliveries s WHERE s.event_id = e.id AND s.status = $2))
       GROUP BY e.id ORDER BY e.created_at DESC, e.sequence DESC LIMIT $3`,
      [filter.orderId ?? null, filter.status ?? null, filter.limit],
    )) as Array<{ id: string; order_id: string; type: string; sequence: number; created_at: Date; deliveries: OrderEventRecord['deliveries'] }>;
    return rows.map((r) => ({
      id: r.id,
      orderId: r.order_id,
      type: r.type,
      sequence: r.sequence,
      createdAt: new Date(r.created_at).toISOString(),
      deliveries: r.deliveries.map((d) => ({
        ...d,
        lastAttemptAt: toIso(d.lastAttemptAt as unknown as Date),
        nextAttemptAt: toIso(d.nextAttemptAt as unknown as Date),
        deliveredAt: toIso(d.deliveredAt as unknown as Date),
      })),
    }));
  }

  /**
   * Sends the event again to every endpoint (rows for endpoints configured
   * since it was written are added), with a fresh retry window. False when
   * there is no such event.
   */
  async redeliver(eventId: string, endpoints: string[]): Promise<boolean> {
    const rows = (await this.db.query(
      `WITH e AS (SELECT id, order_id, sequence FROM order_events WHERE id = $1),
       up AS (
         INSERT INTO order_event_deliveries (event_id, endpoint, order_id, sequence, status, next_attempt_at, retry_from)
         SELECT e.id, ep.endpoint, e.order_id, e.sequence, 'pending', now(), now() FROM e CROSS JOIN unnest($2::text[]) AS ep(endpoint)
         ON CONFLICT (event_id, endpoint) DO UPDATE SET status = 'pending', next_attempt_at = now(), retry_from = now(), locked_until = NULL
       )
       SELECT id FROM e`,
      [eventId, endpoints],
    )) as Array<{ id: string }>;
    if (rows.length > 0) await this.db.query(`SELECT pg_notify($1, $2)`, [ORDER_EVENTS_CHANNEL, `redeliver ${eventId}`]);
    return rows.length > 0;
  }

  /** The order's events after `sequence`, oldest first (a live stream's catch-up). */
  async eventsAfter(orderId: string, sequence: number): Promise<OrderEventBody[]> {
    const rows = (await this.db.query(
      `SELECT id, type, sequence, created_at, data FROM order_events WHERE order_id = $1 AND sequence > $2 ORDER BY sequence`,
      [orderId, sequence],
    )) as Array<{ id: string; type: string; sequence: number; created_at: Date; data: Record<string, unknown> }>;
    return rows.map((r) => ({ id: r.id, type: r.type, sequence: r.sequence, createdAt: new Date(r.created_at).toISOString(), data: r.data }));
  }

  /** Orders with events created since `since`, and each one's newest sequence among them. */
  async latestSequencesSince(since: Date): Promise<Map<string, number>> {
    const rows = (await this.db.query(`SELECT order_id, max(sequence) AS sequence FROM order_events WHERE created_at > $1 GROUP BY order_id`, [since])) as Array<{
      order_id: string;
      sequence: number;
    }>;
    return new Map(rows.map((r) => [r.order_id, Number(r.sequence)]));
  }

  /** The order's newest event, or null when its status never changed. */
  async lastEvent(orderId: string): Promise<OrderEventBody | null> {
    const rows = (await this.db.query(
      `SELECT id, type, sequence, created_at, data FROM order_events WHERE order_id = $1 ORDER BY sequence DESC LIMIT 1`,
      [orderId],
    )) as Array<{ id: string; type: string; sequence: number; created_at: Date; data: Record<string, unknown> }>;
    const r = rows[0];
    return r ? { id: r.id, type: r.type, sequence: r.sequence, createdAt: new Date(r.created_at).toISOString(), data: r.data } : null;
  }

  /** Deliveries waiting and given up, for the metrics. */
  async countOpen(): Promise<{ pending: number; failed: number }> {
    const rows = (await this.db.query(
      `SELECT count(*) FILTER (WHERE status = 'pending') AS pending, count(*) FILTER (WHERE status = 'failed') AS failed
       FROM order_event_deliveries WHERE status <> 'delivered'`,
    )) as Array<{ pending: string; failed: string }>;
    return { pending: Number(rows[0]?.pending ?? 0), failed: Number(rows[0]?.failed ?? 0) };
  }
}

/** `count` new event ids: one call for the random bytes of all (a call each cost more than the rest of the id). */
function newEventIds(count: number): string[] {
  const bytes = randomBytes(12 * count);
  return Array.from({ length: count }, (_, i) => `oev_${bytes.subarray(12 * i, 12 * i + 12).toString('base64url')}`);
}
