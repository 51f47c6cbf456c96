import { Injectable } from '@nestjs/common';
import { CombinedWrite, Database, Queryable, prepared } from '../database/database';
import { Order, OrderItem } from './order.entity';
import { OrderHistoryEntry } from './order-history.entity';
import { EXPIRABLE_STATUSES, OrderStatus } from './order-status';
import { Payment, UnexpectedPayment } from './payment.entity';
import { Refund } from './refund.entity';
import { DisputeRecord, HeldState, nextRefundStatus } from './payment-state';

/**
 * An order and its payment as held under the order row lock in one unit of
 * work, and what has been changed on them so far (written at the end, in one statement).
 */
export interface HeldOrder {
  intentId: string;
  held: HeldState;
  paymentStatus: string;
  disputeId: string | null;
  /** Set when an applied event is the newest so far: the payment's last_event_id. */
  lastEventId: string | null;
  orderChanged: boolean;
  amountCapturable: number;
  /** End of the capture window, epoch seconds; null when none is known. */
  captureBefore: number | null;
  /** Set with a move to needs_review: why. */
  reviewReason: string | null;
  /** Payments to list as unexpected on this order (written with the other changes). */
  unexpected: UnexpectedPayment[];
  /** The order is paid on this Checkout Session; intentId is the session's id until its PaymentIntent is attached. */
  checkoutSessionId: string | null;
  /** held.dispute (and held.statusBeforeDispute) changed: written with the other changes. */
  disputeChanged: boolean;
}

/** One order status change, as the transition writer records it (see order-transitions.ts). */
export interface TransitionRecord {
  orderId: string;
  from: OrderStatus;
  to: OrderStatus;
  reason: string;
  eventId: string | null;
}

/** An order with its payment, as the API shows it; an order whose payment is not recorded yet is not shown. */
export interface OrderWithPayment {
  order: Order;
  payment: Payment;
}

/**
 * Payment statuses that change without the customer acting: a bank debit
 * settling, an authorization that can be captured elsewhere or lapse. The
 * reconciler's stale scan polls only these; a payment waiting on the customer
 * changes only by an event (which the Events API lists) or leaves the open set
 * by the unpaid-order expiry. Keep in step with the predicate of the partial
 * index payments_in_flight_checked_idx (a service-tier test compares the two).
 */
export const IN_FLIGHT_PAYMENT_STATUSES = ['processing', 'requires_capture'];

interface OrderRow {
  id: string;
  status: OrderStatus;
  amount: number;
  currency: string;
  items: OrderItem[];
  customer_email: string;
  amount_refunded: number;
  capture_method: 'automatic' | 'manual';
  review_reason: string | null;
  created_at: Date;
  updated_at: Date;
  payment_id: string;
  payment_status: string;
  client_secret: string;
  checkout_session_id: string | null;
  checkout_url: string | null;
  amount_capturable: number;
  amount_captured: number | null;
  capture_before: Date | null;
}

const ORDER_COLUMNS = `o.id, o.status, o.amount, o.currency, o.items, o.customer_email, o.amount_refunded, o.capture_method, o.review_reason, o.created_at, o.updated_at`;

const ORDER_WITH_PAYMENT = `SELECT ${ORDER_COLUMNS},
    p.id AS payment_id, p.status AS payment_status, p.client_secret, p.checkout_session_id, p.checkout_url, p.amount_capturable, p.amount_captured, p.capture_before
  FROM orders o JOIN payments p ON p.order_id = o.id`;

/** Where authorized orders without a known capture window sort: last. */
const NO_DEADLINE = '9999-12-31T00:00:00.000Z';

/**
 * Locks the orders that own these PaymentIntents (or Checkout Sessions), and
 * orders named by id, in id order so two transactions never wait on each other
 * in a cycle (the lock order is always inbox rows -> order rows -> payment rows).
 *
 * The orders table alone is locked and filtered: the ids come from an InitPlan
 * (`= ANY(ARRAY(…))`, computed once before the scan), not from a join. When a
 * row was changed by the transaction it waited for, READ COMMITTED rechecks
 * only that row's new version against the same ids; a join or semi-join with
 * payments here was rechecked through the other rows' saved versions, and
 * under load dropped an order that was locked and changed meanwhile (its event
 * was then recorded as for an unknown object).
 */
const LOCK_ORDERS_BY_INTENT = prepared(`SELECT o.id AS order_id, o.status AS order_status, o.amount AS order_amount,
    o.currency AS order_currency, o.amount_refunded, o.capture_method, o.status_before_dispute
  FROM orders o
  WHERE o.id = ANY(ARRAY(SELECT order_id FROM payments WHERE id = ANY($1) UNION ALL SELECT order_id FROM payments WHERE checkout_session_id = ANY($1)
    UNION ALL SELECT unnest($2::uuid[])))
  ORDER BY o.id FOR UPDATE`);

const LOCK_ORDER_BY_ID = `SELECT o.id AS order_id, o.status AS order_status, o.amount AS order_amount,
    o.currency AS order_currency, o.amount_refunded, o.capture_method, o.status_before_dispute
  FROM orders o WHERE o.id = $1 FOR UPDATE`;

/**
 * Read after the order locks, in a statement of its own: a statement that
 * waited for a row lock sees the newest version of the locked row only, while
 * the other rows of its join stay as they were when it started (READ COMMITTED
 * rechecks), so a payment row read in the locking statement could be one commit old.
 */
const SELECT_DISPUTE = `SELECT id, order_id, status, reason, amount, extract(epoch FROM evidence_due_by)::bigint AS evidence_due_by, event_created FROM disputes`;

interface DisputeRow {
  id: string;
  order_id: string;
  status: string;
  reason: string | null;
  amount: number;
  evidence_due_by: string | number | null;
  event_created: string | number;
}

function toDisputeRecord(r: DisputeRow): DisputeRecord {
  return {
    id: r.id,
    status: r.status,
    reason: r.reason,
    amount: r.amount,
    evidenceDueBy: r.evidence_due_by === null ? null : Number(r.evidence_due_by),
    eventCreated: Number(r.event_created),
  };
}

/** The locked orders' payments, each with its order's dispute as last recorded (null when none): one round trip. */
const READ_PAYMENTS = prepared(`SELECT p.id, p.order_id, p.status, p.last_event_created, p.dispute_id, p.amount_capturable, p.amount_captured,
    extract(epoch FROM p.capture_before)::bigint AS capture_before, p.checkout_session_id,
    (SELECT row_to_json(d) FROM (${SELECT_DISPUTE} WHERE order_id = p.order_id ORDER BY updated_at DESC LIMIT 1) d) AS dispute
  FROM payments p WHERE p.order_id = ANY($1::uuid[])`);

interface LockedRow {
  order_id: string;
  order_status: OrderStatus;
  order_amount: number;
  order_currency: string;
  amount_refunded: number;
  capture_method: 'automatic' | 'manual';
  status_before_dispute: OrderStatus | null;
}

/**
 * The one owner of the order aggregate's tables: orders, payments, refunds,
 * order_status_history and idempotency_keys. They share one lock (the order
 * row) and one transaction, so one repository holds their SQL; every query is
 * a named method.
 */
@Injectable()
export class OrderRepository {
  constructor(private readonly db: Database) {}

  // --- reads for the API

  async findWithPayment(id: string): Promise<OrderWithPayment | null> {
    const [row] = await this.db.query<OrderRow>(`${ORDER_WITH_PAYMENT} WHERE o.id = $1`, [id]);
    return row ? toOrderWithPayment(row) : null;
  }

  /**
   * Newest first, keyset-paginated on (created_at, id); `limit` rows at most.
   * Authorized orders come soonest-to-lapse first instead, keyed on
   * (capture_before, id): the ones to capture next lead the list.
   */
  async listPage(filter: { status?: OrderStatus; after?: { at: Date; id: string }; limit: number }): Promise<OrderWithPayment[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const byDeadline = filter.status === 'authorized';
    const key = byDeadline ? `COALESCE(p.capture_before, '${NO_DEADLINE}'::timestamptz)` : 'o.created_at';
    if (filter.status) {
      params.push(filter.status);
      where.push(`o.status = $${params.length}`);
    }
    if (filter.after) {
      params.push(filter.after.at, filter.after.id);
      where.push(`(${key}, o.id) ${byDeadline ? '>' : '<'} ($${params.length - 1}, $${params.length})`);
    }
    params.push(filter.limit);
    const order = byDeadline ? `${key}, o.id` : `o.created_at DESC, o.id DESC`;
    const rows = await this.db.query<OrderRow>(`${ORDER_WITH_PAYMENT} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ${order} LIMIT $${params.length}`, params);
    return rows.map(toOrderWithPayment);
  }

  /** The key a page of `status` is ordered on, for the cursor after `row`. */
  pageKey(status: OrderStatus | undefined, row: OrderWithPayment): Date {
    if (status === 'authorized') return row.payment.captureBefore ?? new Date(NO_DEADLINE);
    return row.order.createdAt;
  }

  /** Payments listed as unexpected on these orders. */
  async unexpectedOf(orderIds: string[]): Promise<Array<UnexpectedPayment & { orderId: string }>> {
    if (orderIds.length === 0) return [];
    const rows = await this.db.query<UnexpectedPayment & { order_id: string }>(
      `SELECT id, order_id, amount, currency, status FROM unexpected_payments WHERE order_id = ANY($1) ORDER BY created_at, id`,
      [orderIds],
    );
    return rows.map((r) => ({ id: r.id, orderId: r.order_id, amount: r.amount, currency: r.currency, status: r.status }));
  }

  /** Which of these payments are listed as unexpected already (under the orders' locks, in the unit of work). */
  async unexpectedPaymentIdsAmong(tx: Queryable, ids: string[]): Promise<string[]> {
    const rows = await tx.query<{ id: string }>(`SELECT id FROM unexpected_payments WHERE id = ANY($1)`, [ids]);
    return rows.map((r) => r.id);
  }

  /** Authorized orders whose capture window ends before `until`: they lapse unless captured. */
  async countAuthorizationsEndingBefore(until: Date): Promise<number> {
    const [row] = await this.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM payments WHERE status = 'requires_capture' AND capture_before < $1`, [until]);
    return row?.n ?? 0;
  }

  /** Orders unpaid since before `cutoff` (see EXPIRABLE_STATUSES), oldest first, with their PaymentIntent. */
  async findUnpaidCreatedBefore(cutoff: Date, limit: number): Promise<Array<{ orderId: string; paymentIntentId: string }>> {
    const rows = await this.db.query<{ id: string; payment_id: string }>(
      `SELECT o.id, p.id AS payment_id FROM orders o JOIN payments p ON p.order_id = o.id
        WHERE o.status = ANY($1) AND o.created_at < $2 ORDER BY o.created_at LIMIT $3`,
      [EXPIRABLE_STATUSES, cutoff, limit],
    );
    return rows.map((r) => ({ orderId: r.id, paymentIntentId: r.payment_id }));
  }

  /** The order row alone: an order whose payment is not recorded yet (its creation is under way). */
  async findOrder(id: string): Promise<Order | null> {
    const [row] = await this.db.query<OrderRow>(`SELECT ${ORDER_COLUMNS} FROM orders o WHERE o.id = $1`, [id]);
    return row ? toOrderWithPayment(row).order : null;
  }

  /** History entries of these orders, oldest first. */
  async historyOf(orderIds: string[]): Promise<OrderHistoryEntry[]> {
    if (orderIds.length === 0) return [];
    const rows = await this.db.query<{ order_id: string; from_status: OrderStatus; to_status: OrderStatus; at: Date; reason: string; event_id: string | null }>(
      `SELECT order_id, from_status, to_status, at, reason, event_id FROM order_status_history WHERE order_id = ANY($1) ORDER BY id`,
      [orderIds],
    );
    return rows.map((r) => ({ orderId: r.order_id, from: r.from_status, to: r.to_status, at: r.at, reason: r.reason, eventId: r.event_id }));
  }

  refundsOf(orderId: string): Promise<Refund[]> {
    return this.db.query<Refund>(`SELECT id, amount, status FROM refunds WHERE order_id = $1`, [orderId]);
  }

  async findIdempotencyKey(key: string): Promise<{ requestHash: string; orderId: string } | null> {
    const [row] = await this.db.query<{ request_hash: string; order_id: string }>(`SELECT request_hash, order_id FROM idempotency_keys WHERE key = $1`, [key]);
    return row ? { requestHash: row.request_hash, orderId: row.order_id } : null;
  }

  // --- order creation (see OrdersService.create for the steps around the PSP call)

  async insertOrder(q: Queryable, order: Order): Promise<void> {
    await q.query(
      `INSERT INTO orders (id, status, amount, currency, items, customer_email, amount_refunded, capture_method, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`,
      [order.id, order.status, order.amount, order.currency, JSON.stringify(order.items), order.customerEmail, order.amountRefunded, order.captureMethod, order.createdAt],
    );
  }

  /** Blocks while another transaction holds the same key uncommitted; a committed one is a unique violation. */
  async insertIdempotencyKey(q: Queryable, key: string, requestHash: string, orderId: string, at: Date): Promise<void> {
    await q.query(`INSERT INTO idempotency_keys (key, request_hash, order_id, created_at) VALUES ($1, $2, $3, $4)`, [key, requestHash, orderId, at]);
  }

  /**
   * Frees `key` when its row was created before `cutoff` (an expired key), so the
   * request that found it taken can create a new order. True when a row was deleted.
   */
  async deleteIdempotencyKeyOlderThan(key: string, cutoff: Date): Promise<boolean> {
    const rows = await this.db.query(`DELETE FROM idempotency_keys WHERE key = $1 AND created_at < $2 RETURNING key`, [key, cutoff]);
    return rows.length > 0;
  }

  /** Records the PaymentIntent the PSP created for the order; false when it was recorded already. */
  async insertPayment(payment: Payment & { amount: number; amountReceived: number; currency: string }, at: Date): Promise<boolean> {
    const rows = await this.db.query(
      `INSERT INTO payments (id, order_id, status, amount, amount_received, currency, client_secret, amount_capturable, checkout_session_id, checkout_url, created_at, checked_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) ON CONFLICT DO NOTHING RETURNING id`,
      [
        payment.id, payment.orderId, payment.status, payment.amount, payment.amountReceived, payment.currency, payment.clientSecret,
        payment.amountCapturable, payment.checkoutSessionId, payment.checkoutUrl, at,
      ],
    );
    return rows.length > 0;
  }

  /** Removes an order whose PaymentIntent could not be created (its idempotency key goes with it); never one with a payment. */
  async deleteOrderWithoutPayment(orderId: string): Promise<void> {
    await this.db.query(`DELETE FROM orders WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM payments WHERE order_id = $1)`, [orderId]);
  }

  /** The PSP's answer to a refund request; the refund events may have recorded it first. */
  async insertRefund(orderId: string, paymentIntentId: string, refund: Refund): Promise<void> {
    const now = new Date();
    await this.db.query(
      `INSERT INTO refunds (id, order_id, payment_intent_id, amount, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (id) DO NOTHING`,
      [refund.id, orderId, paymentIntentId, refund.amount, refund.status, now],
    );
  }

  // --- the unit of work (see order-transitions.ts): locks, then one write

  /**
   * Locks the orders owning these PaymentIntents, and the orders with these
   * ids (named by payments that are not their own), in one statement, and
   * reads their payments fresh; keyed by the order's own PaymentIntent id.
   */
  async lockByIntent(tx: Queryable, intentIds: string[], orderIds: string[] = []): Promise<Map<string, HeldOrder>> {
    if (intentIds.length === 0 && orderIds.length === 0) return new Map();
    return this.withPayments(tx, await tx.query<LockedRow>(LOCK_ORDERS_BY_INTENT, [intentIds, orderIds]));
  }

  /** Locks one order (with its payment); null when it has no payment recorded. */
  async lockByOrder(tx: Queryable, orderId: string): Promise<HeldOrder | null> {
    const held = await this.withPayments(tx, await tx.query<LockedRow>(LOCK_ORDER_BY_ID, [orderId]));
    return [...held.values()][0] ?? null;
  }

  private async withPayments(tx: Queryable, locked: LockedRow[]): Promise<Map<string, HeldOrder>> {
    const out = new Map<string, HeldOrder>();
    if (locked.length === 0) return out;
    const payments = await tx.query<{
      id: string; order_id: string; status: string; last_event_created: string; dispute_id: string | null;
      amount_capturable: number; amount_captured: number | null; capture_before: string | null; checkout_session_id: string | null;
      dispute: DisputeRow | null;
    }>(READ_PAYMENTS, [
      locked.map((o) => o.order_id),
    ]);
    const paymentByOrder = new Map(payments.map((p) => [p.order_id, p]));
    for (const o of locked) {
      // An order whose payment is not recorded yet (its creation is under way) is not held.
      const p = paymentByOrder.get(o.order_id);
      if (!p) continue;
      const h: HeldOrder = {
        intentId: p.id,
        held: {
          orderId: o.order_id,
          orderStatus: o.order_status,
          orderAmount: o.order_amount,
          orderCurrency: o.order_currency,
          amountRefunded: o.amount_refunded,
          amountCaptured: p.amount_captured,
          captureMethod: o.capture_method,
          lastEventCreated: Number(p.last_event_created),
          dispute: p.dispute ? toDisputeRecord(p.dispute) : null,
          statusBeforeDispute: o.status_before_dispute,
        },
        paymentStatus: p.status,
        disputeId: p.dispute_id,
        lastEventId: null,
        orderChanged: false,
        amountCapturable: p.amount_capturable,
        captureBefore: p.capture_before === null ? null : Number(p.capture_before),
        reviewReason: null,
        unexpected: [],
        checkoutSessionId: p.checkout_session_id,
        disputeChanged: false,
      };
      out.set(p.id, h);
      // Session events name the session: the order is found by it too, before and after its PaymentIntent is attached.
      if (p.checkout_session_id) out.set(p.checkout_session_id, h);
    }
    return out;
  }

  /**
   * Records refunds' own statuses (under the order lock; a status never goes
   * back, see nextRefundStatus), then returns the PSP's figure, the sum of the
   * charge's succeeded refunds, and how much of what we held as succeeded
   * failed with these records.
   */
  async recordRefunds(tx: Queryable, orderId: string, paymentIntentId: string, refunds: Refund[]): Promise<{ total: number; failed: number }> {
    const now = new Date();
    let failed = 0;
    for (const refund of refunds) {
      // OrdersService may have inserted it already (it records the PSP's answer to the refund request).
      const inserted = await tx.query(
        `INSERT INTO refunds (id, order_id, payment_intent_id, amount, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)
         ON CONFLICT (id) DO NOTHING RETURNING id`,
        [refund.id, orderId, paymentIntentId, refund.amount, refund.status, now],
      );
      if (inserted.length > 0) continue;
      const [existing] = await tx.query<{ status: string; amount: number }>(`SELECT status, amount FROM refunds WHERE id = $1`, [refund.id]);
      const status = nextRefundStatus(existing?.status, refund.status);
      if (existing && existing.status !== status) {
        await tx.query(`UPDATE refunds SET status = $2, updated_at = $3 WHERE id = $1`, [refund.id, status, now]);
        if (existing.status === 'succeeded') failed += existing.amount;
      }
    }
    const [sum] = await tx.query<{ total: number }>(`SELECT COALESCE(SUM(amount), 0)::int AS total FROM refunds WHERE payment_intent_id = $1 AND status = 'succeeded'`, [
      paymentIntentId,
    ]);
    return { total: Number(sum?.total ?? 0), failed };
  }

  /** These orders' disputes, as last recorded (Stripe opens at most one per charge). */
  async disputesOf(orderIds: string[]): Promise<Array<DisputeRecord & { orderId: string }>> {
    if (orderIds.length === 0) return [];
    const rows = await this.db.query<DisputeRow>(`${SELECT_DISPUTE} WHERE order_id = ANY($1::uuid[]) ORDER BY updated_at`, [orderIds]);
    return rows.map((r) => ({ ...toDisputeRecord(r), orderId: r.order_id }));
  }

  /**
   * Adds the unit of work's writes to `write`: the history entries (one per
   * transition record, in order), the changed orders, the touched payments
   * (each counts as checked now). Empty parts are left out.
   */
  addChanges(write: CombinedWrite, transitions: TransitionRecord[], touched: HeldOrder[], at: Date): void {
    if (transitions.length > 0) {
      write.add(
        (b) => `INSERT INTO order_status_history (order_id, from_status, to_status, at, reason, event_id)
          SELECT s.o, s.f, s.t, ${b(at)}, s.r, s.e FROM unnest(${b(transitions.map((t) => t.orderId))}::uuid[], ${b(transitions.map((t) => t.from))}::text[],
            ${b(transitions.map((t) => t.to))}::text[], ${b(transitions.map((t) => t.reason))}::text[], ${b(transitions.map((t) => t.eventId))}::text[])
            WITH ORDINALITY AS s(o, f, t, r, e, n) ORDER BY s.n`,
      );
    }
    const orders = touched.filter((h) => h.orderChanged);
    if (orders.length > 0) {
      write.add(
        (b) => `UPDATE orders SET status = u.status, amount_refunded = u.refunded, review_reason = COALESCE(u.review, orders.review_reason),
            status_before_dispute = u.before_dispute, updated_at = ${b(at)}
          FROM unnest(${b(orders.map((h) => h.held.orderId))}::uuid[], ${b(orders.map((h) => h.held.orderStatus))}::text[], ${b(orders.map((h) => h.held.amountRefunded))}::int[],
            ${b(orders.map((h) => h.reviewReason))}::text[], ${b(orders.map((h) => h.held.statusBeforeDispute))}::text[]) AS u(id, status, refunded, review, before_dispute)
          WHERE orders.id = u.id`,
      );
    }
    if (touched.length > 0) {
      write.add(
        (b) => `UPDATE payments SET status = u.status, last_event_created = u.lec, checked_at = ${b(at)},
            last_event_id = COALESCE(u.leid, payments.last_event_id), dispute_id = COALESCE(payments.dispute_id, u.dispute),
            amount_capturable = u.capturable, amount_captured = u.captured, capture_before = to_timestamp(u.before)
          FROM unnest(${b(touched.map((h) => h.intentId))}::text[], ${b(touched.map((h) => h.paymentStatus))}::text[], ${b(touched.map((h) => h.held.lastEventCreated))}::bigint[],
            ${b(touched.map((h) => h.lastEventId))}::text[], ${b(touched.map((h) => h.disputeId))}::text[], ${b(touched.map((h) => h.amountCapturable))}::int[],
            ${b(touched.map((h) => h.held.amountCaptured))}::int[], ${b(touched.map((h) => h.captureBefore))}::bigint[])
            AS u(id, status, lec, leid, dispute, capturable, captured, before)
          WHERE payments.id = u.id`,
      );
    }
    const disputes = touched.filter((h) => h.disputeChanged && h.held.dispute).map((h) => ({ ...(h.held.dispute as DisputeRecord), orderId: h.held.orderId }));
    if (disputes.length > 0) {
      write.add(
        (b) => `INSERT INTO disputes (id, order_id, status, reason, amount, evidence_due_by, event_created, updated_at)
          SELECT u.id, u.o, u.status, u.reason, u.amount, to_timestamp(u.due), u.created, ${b(at)}
          FROM unnest(${b(disputes.map((d) => d.id))}::text[], ${b(disputes.map((d) => d.orderId))}::uuid[], ${b(disputes.map((d) => d.status))}::text[],
            ${b(disputes.map((d) => d.reason))}::text[], ${b(disputes.map((d) => d.amount))}::int[], ${b(disputes.map((d) => d.evidenceDueBy))}::bigint[],
            ${b(disputes.map((d) => d.eventCreated))}::bigint[]) AS u(id, o, status, reason, amount, due, created)
          ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, reason = EXCLUDED.reason, amount = EXCLUDED.amount,
            evidence_due_by = EXCLUDED.evidence_due_by, event_created = EXCLUDED.event_created, updated_at = EXCLUDED.updated_at`,
      );
    }
    const unexpected = touched.flatMap((h) => h.unexpected.map((u) => ({ ...u, orderId: h.held.orderId })));
    if (unexpected.length > 0) {
      write.add(
        (b) => `INSERT INTO unexpected_payments (id, order_id, amount, currency, status, created_at)
          SELECT u.id, u.o, u.amount, u.currency, u.status, ${b(at)}
          FROM unnest(${b(unexpected.map((u) => u.id))}::text[], ${b(unexpected.map((u) => u.orderId))}::uuid[], ${b(unexpected.map((u) => u.amount))}::int[],
            ${b(unexpected.map((u) => u.currency))}::text[], ${b(unexpected.map((u) => u.status))}::text[]) AS u(id, o, amount, currency, status)
          ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status`,
      );
    }
  }

  /**
   * SQL for the outbox (see order-events-outbox.port.ts): for each row of
   * `batch` (a CTE with n, order_id, to_status, at, k = the row's place among
   * its order's rows of the batch, in_batch = their count), `n` and `data`, the
   * order view of GET /orders/:id as that transition left it. Run after this
   * transaction's writes, under every order's row lock: the batch's history rows
   * are the order's newest, so a row's history is the order's without the
   * batch's later entries; its status and updatedAt are its own transition's.
   */
  transitionViewsSql(batch: string): string {
    const base = `SELECT t.n, t.order_id, json_build_object(
        'id', o.id, 'status', t.to_status, 'amount', o.amount, 'currency', o.currency, 'items', o.items,
        'customerEmail', o.customer_email, 'captureMethod', o.capture_method,
        'payment', CASE WHEN p.id IS NULL THEN NULL WHEN p.checkout_session_id IS NULL THEN json_build_object('id', p.id, 'status', p.status, 'clientSecret', p.client_secret)
          ELSE json_build_object('id', CASE WHEN p.id = p.checkout_session_id THEN NULL ELSE p.id END, 'status', p.status, 'clientSecret', NULLIF(p.client_secret, ''),
            'checkoutSessionId', p.checkout_session_id, 'checkoutUrl', p.checkout_url) END,
        'amountRefunded', o.amount_refunded,
        'history', (
          SELECT COALESCE(json_agg(json_build_object('from', h.from_status, 'to', h.to_status, 'at', ${iso('h.at')}, 'reason', h.reason, 'eventId', h.event_id) ORDER BY h.id), '[]'::json)
          FROM (SELECT * FROM order_status_history WHERE order_id = t.order_id ORDER BY id DESC OFFSET (t.in_batch - t.k)) h
        ),
        'createdAt', ${iso('o.created_at')}, 'updatedAt', ${iso('t.at')}
      ) AS data
      FROM ${batch} t JOIN orders o ON o.id = t.order_id LEFT JOIN payments p ON p.order_id = o.id`;
    // The fields toOrderView adds only where they apply, added the same way.
    return `SELECT v.n, CASE WHEN x.extra = '{}'::jsonb THEN v.data ELSE (v.data::jsonb || x.extra)::json END AS data
      FROM (${base}) v JOIN orders o ON o.id = v.order_id LEFT JOIN payments p ON p.order_id = o.id
      CROSS JOIN LATERAL (SELECT
        CASE WHEN o.capture_method = 'manual' THEN jsonb_build_object('amountCapturable', COALESCE(p.amount_capturable, 0),
          'captureBefore', ${iso('p.capture_before')}) ELSE '{}'::jsonb END
        || CASE WHEN p.amount_captured IS NOT NULL THEN jsonb_build_object('amountCaptured', p.amount_captured) ELSE '{}'::jsonb END
        || CASE WHEN o.review_reason IS NOT NULL THEN jsonb_build_object('reviewReason', o.review_reason) ELSE '{}'::jsonb END
        || COALESCE((SELECT jsonb_build_object('dispute', jsonb_build_object('id', d.id, 'status', d.status, 'reason', d.reason, 'amount', d.amount,
              'evidenceDueBy', ${iso('d.evidence_due_by')})) FROM disputes d WHERE d.order_id = o.id ORDER BY d.updated_at DESC LIMIT 1), '{}'::jsonb)
        || (SELECT CASE WHEN count(*) = 0 THEN '{}'::jsonb ELSE jsonb_build_object('unexpectedPayments',
              jsonb_agg(jsonb_build_object('id', u.id, 'amount', u.amount, 'currency', u.currency, 'status', u.status) ORDER BY u.created_at, u.id)) END
            FROM unexpected_payments u WHERE u.order_id = o.id) AS extra) x`;
  }

  /**
   * The Checkout Session created its PaymentIntent: the payment row, keyed by
   * the session's id until now, is keyed by the PaymentIntent's from here on.
   * Run under the order's lock, before the unit of work's combined write.
   */
  async attachIntentToSession(tx: Queryable, sessionId: string, intentId: string): Promise<void> {
    await tx.query(`UPDATE payments SET id = $2 WHERE id = $1 AND checkout_session_id = $1`, [sessionId, intentId]);
  }

  // --- the reconciler's stale scan

  /** Payments last reported in flight that nobody (an event or the reconciler) confirmed for `staleAfterMs`, oldest first. */
  async findStalePaymentIds(staleAfterMs: number, limit: number): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>(
      `SELECT id FROM payments
        WHERE status = ANY($1) AND checked_at < now() - make_interval(secs => $2::double precision / 1000)
        ORDER BY checked_at LIMIT $3`,
      [IN_FLIGHT_PAYMENT_STATUSES, staleAfterMs, limit],
    );
    return rows.map((r) => r.id);
  }

  /** An event on its way to the processor is news about its payment: it need not be retrieved as stale too. */
  async markPaymentsChecked(intentIds: string[]): Promise<void> {
    if (intentIds.length > 0) await this.db.query(`UPDATE payments SET checked_at = now() WHERE id = ANY($1)`, [intentIds]);
  }
}

/** ISO 8601 in UTC with milliseconds, exactly as Date.toISOString() writes it (the API's format). */
function iso(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}

function toOrderWithPayment(r: OrderRow): OrderWithPayment {
  return {
    order: {
      id: r.id,
      status: r.status,
      amount: r.amount,
      currency: r.currency,
      items: r.items,
      customerEmail: r.customer_email,
      amountRefunded: r.amount_refunded,
      captureMethod: r.capture_method,
      reviewReason: r.review_reason,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    },
    payment: {
      id: r.payment_id,
      orderId: r.id,
      status: r.payment_status,
      clientSecret: r.client_secret,
      checkoutSessionId: r.checkout_session_id,
      checkoutUrl: r.checkout_url,
      amountCapturable: r.amount_capturable,
      amountCaptured: r.amount_captured,
      captureBefore: r.capture_before,
    },
  };
}
