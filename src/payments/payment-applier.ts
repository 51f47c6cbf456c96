import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type Stripe from 'stripe';
import { DataSource, EntityManager } from 'typeorm';
import { Order } from '../orders/order.entity';
import { OrderStatus, canTransition } from '../orders/order-status';
import { lockOrder, transitionOrder } from '../orders/order-transitions';
import { orderTransitions } from '../metrics/metrics';
import { Payment } from './payment.entity';
import { Refund } from './refund.entity';
import { Decision, HeldState, PspFact, decide, factFromIntent, nextRefundStatus, readEvent } from './payment-state';
import { StripeClient } from './psp/stripe.client';

interface LockedOrder {
  order_id: string;
  order_status: string;
  order_amount: number;
  order_currency: string;
  amount_refunded: number;
}

interface HeldPayment {
  payment_status: string;
  last_event_created: string;
  dispute_id: string | null;
}

const LOCK_ORDER_BY_INTENT = `SELECT o.id AS order_id, o.status AS order_status, o.amount AS order_amount, o.currency AS order_currency, o.amount_refunded
  FROM payments p JOIN orders o ON o.id = p.order_id WHERE p.id = $1 FOR UPDATE OF o`;

/**
 * Read after the order lock, in a statement of its own: a statement that waited
 * for a row lock sees the newest version of the locked row only, while the other
 * rows of its join stay as they were when it started (READ COMMITTED rechecks),
 * so the payment row read in the locking statement could be one commit old.
 */
const READ_PAYMENT = `SELECT status AS payment_status, last_event_created, dispute_id FROM payments WHERE id = $1`;

/**
 * The writes of one applied event as one statement (one round trip on the hot
 * path): history entries in order, the order row when it changed, the payment
 * row, and the inbox row marked processed, all in the caller's transaction.
 */
const APPLY_EVENT = `WITH history AS (
    INSERT INTO order_status_history (order_id, from_status, to_status, at, reason, event_id)
    SELECT $1, s.f, s.t, $4, $5, $6 FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS s(f, t, n) ORDER BY s.n
  ), ord AS (
    UPDATE orders SET status = $7, amount_refunded = $8, updated_at = $4 WHERE id = $1 AND $9::boolean
  ), pay AS (
    UPDATE payments SET status = $11, last_event_created = $12, checked_at = $4,
      last_event_id = COALESCE($13, last_event_id), dispute_id = COALESCE($14, dispute_id)
    WHERE id = $10
  )
  UPDATE webhook_events SET status = 'processed', outcome = $15, attempts = attempts + 1, last_error = NULL, processed_at = now() WHERE id = $6`;

/** APPLY_EVENT for a batch: arrays in, one statement, the order of history entries kept. */
const APPLY_EVENTS = `WITH history AS (
    INSERT INTO order_status_history (order_id, from_status, to_status, at, reason, event_id)
    SELECT s.o, s.f, s.t, $4, s.r, s.e FROM unnest($1::uuid[], $2::text[], $3::text[], $5::text[], $6::text[]) WITH ORDINALITY AS s(o, f, t, r, e, n) ORDER BY s.n
  ), ord AS (
    UPDATE orders SET status = u.status, amount_refunded = u.refunded, updated_at = $4
    FROM unnest($7::uuid[], $8::text[], $9::int[]) AS u(id, status, refunded) WHERE orders.id = u.id
  ), pay AS (
    UPDATE payments SET status = u.status, last_event_created = u.lec, checked_at = $4,
      last_event_id = COALESCE(u.leid, payments.last_event_id), dispute_id = COALESCE(payments.dispute_id, u.dispute)
    FROM unnest($10::text[], $11::text[], $12::bigint[], $13::text[], $14::text[]) AS u(id, status, lec, leid, dispute) WHERE payments.id = u.id
  )
  UPDATE webhook_events SET status = u.status, outcome = u.outcome, attempts = attempts + 1, last_error = NULL, processed_at = now()
  FROM unnest($15::text[], $16::text[], $17::text[]) AS u(id, status, outcome) WHERE webhook_events.id = u.id`;

/** What became of one inbox event. */
export type EventOutcome = Decision['outcome'] | 'unknown_type' | 'unknown_object' | 'already_done' | 'missing';

/** Thrown inside the transaction to roll it back when the PSP must be asked first (never while holding locks). */
class NeedsPsp extends Error {
  constructor(readonly paymentIntentId?: string, readonly chargeId?: string) {
    super('needs PSP state');
  }
}

interface PspAnswers {
  intent?: Stripe.PaymentIntent;
  /** The PaymentIntent a charge belongs to, for disputes that name only the charge. */
  chargeIntentId?: string | null;
}

/**
 * Applies PSP facts to orders. Each application is one transaction that locks
 * the order row, asks the pure machine (payment-state.ts), writes the change
 * and its history, and records the inbox row as applied: so a status change
 * and the event that caused it commit together or not at all.
 */
@Injectable()
export class PaymentApplier {
  private readonly logger = new Logger(PaymentApplier.name);

  constructor(@InjectDataSource() private readonly db: DataSource, private readonly psp: StripeClient) {}

  /** Applies the inbox event `eventId`; safe to call any number of times for the same event. */
  async applyInboxEvent(eventId: string): Promise<EventOutcome> {
    const answers: PspAnswers = {};
    // At most two PSP look-ups (charge -> intent, then intent state); each restarts the transaction.
    for (let round = 0; ; round++) {
      try {
        return await this.db.transaction((manager) => this.applyInTransaction(manager, eventId, answers));
      } catch (err) {
        if (!(err instanceof NeedsPsp) || round >= 2) throw err;
        if (err.chargeId) {
          const charge = await this.psp.retrieveCharge(err.chargeId);
          answers.chargeIntentId = typeof charge.payment_intent === 'string' ? charge.payment_intent : (charge.payment_intent?.id ?? null);
        } else if (err.paymentIntentId) {
          answers.intent = await this.psp.retrievePaymentIntent(err.paymentIntentId);
        }
      }
    }
  }

  private async applyInTransaction(manager: EntityManager, eventId: string, answers: PspAnswers): Promise<EventOutcome> {
    // The row lock serializes two jobs for one event (a relay or replay racing the original).
    const [row] = (await manager.query(`SELECT payload, status FROM webhook_events WHERE id = $1 FOR UPDATE`, [eventId])) as Array<{ payload: string; status: string }>;
    if (!row) return 'missing';
    if (row.status === 'processed' || row.status === 'ignored') return 'already_done';
    const event = JSON.parse(row.payload) as Stripe.Event;
    const read = readEvent(event);
    if (!read) return this.finish(manager, eventId, 'ignored', 'unknown_type');

    let intentId = read.paymentIntentId;
    if (!intentId && read.chargeId) {
      if (answers.chargeIntentId === undefined) throw new NeedsPsp(undefined, read.chargeId);
      intentId = answers.chargeIntentId;
    }
    // One query finds the order that owns the PaymentIntent and locks its row (the lock order is
    // always inbox row -> order row -> payment row, so two transactions never wait on each other in a cycle).
    const [locked] = intentId ? ((await manager.query(LOCK_ORDER_BY_INTENT, [intentId])) as LockedOrder[]) : [];
    if (!locked || !intentId) return this.finish(manager, eventId, 'ignored', 'unknown_object');
    const [payment] = (await manager.query(READ_PAYMENT, [intentId])) as HeldPayment[];

    let fact: PspFact = read.fact;
    if (read.refund) fact = { kind: 'refund', amountRefunded: await this.recordRefund(manager, locked.order_id, intentId, read.refund), created: fact.created };
    const held: HeldState = {
      orderId: locked.order_id,
      orderStatus: locked.order_status as OrderStatus,
      orderAmount: locked.order_amount,
      orderCurrency: locked.order_currency,
      amountRefunded: locked.amount_refunded,
      lastEventCreated: Number(payment.last_event_created),
    };
    let decision = decide(held, fact);
    if (decision.needsPspState) {
      if (!answers.intent) throw new NeedsPsp(intentId);
      decision = decide(held, factFromIntent(answers.intent, fact.created));
    }

    // Walk the steps the machine allows; each is one history entry.
    const moves: Array<{ from: OrderStatus; to: OrderStatus }> = [];
    let status = held.orderStatus;
    for (const to of decision.steps) {
      if (!canTransition(status, to)) continue;
      moves.push({ from: status, to });
      status = to;
    }
    const now = new Date();
    // Every write of this event in one statement: history, order, payment, inbox row.
    await manager.query(APPLY_EVENT, [
      held.orderId,
      moves.map((m) => m.from),
      moves.map((m) => m.to),
      now,
      `${event.type}: ${decision.reason}`,
      eventId,
      status,
      decision.amountRefunded,
      moves.length > 0 || decision.amountRefunded !== held.amountRefunded,
      intentId,
      decision.intentStatus ?? payment.payment_status,
      decision.lastEventCreated,
      event.created >= held.lastEventCreated ? eventId : null,
      fact.kind === 'dispute' && !payment.dispute_id ? fact.disputeId : null,
      decision.outcome,
    ]);
    for (const m of moves) orderTransitions.inc({ from: m.from, to: m.to });
    this.logger.log({ msg: 'event applied', eventId, orderId: held.orderId, type: event.type, outcome: decision.outcome, steps: moves.map((m) => m.to), status });
    return decision.outcome;
  }

  /**
   * Applies many inbox events in one transaction: the hot path under load,
   * where one round trip per statement would cost more than the work. Same
   * locks (inbox rows, then order rows, both in id order so two batches never
   * wait on each other in a cycle), same machine, same writes as one event.
   * Events that need more than their own bytes (a PSP look-up, a refund to
   * record) are left out of the result: the caller applies them one by one.
   */
  async applyInboxEvents(ids: string[]): Promise<Map<string, EventOutcome>> {
    return this.db.transaction(async (manager) => {
      const results = new Map<string, EventOutcome>();
      const rows = (await manager.query(`SELECT id, payload, status FROM webhook_events WHERE id = ANY($1) ORDER BY id FOR UPDATE`, [ids])) as Array<{
        id: string;
        payload: string;
        status: string;
      }>;
      const inbox: Array<{ id: string; status: 'processed' | 'ignored'; outcome: EventOutcome }> = [];
      const candidates: Array<{ id: string; event: Stripe.Event; intentId: string; fact: PspFact }> = [];
      for (const id of ids) if (!rows.some((r) => r.id === id)) results.set(id, 'missing');
      for (const row of rows) {
        if (row.status === 'processed' || row.status === 'ignored') {
          results.set(row.id, 'already_done');
          continue;
        }
        const event = JSON.parse(row.payload) as Stripe.Event;
        const read = readEvent(event);
        if (!read) {
          inbox.push({ id: row.id, status: 'ignored', outcome: 'unknown_type' });
          results.set(row.id, 'unknown_type');
        } else if (read.paymentIntentId && !read.refund) {
          candidates.push({ id: row.id, event, intentId: read.paymentIntentId, fact: read.fact });
        }
      }

      const intentIds = [...new Set(candidates.map((c) => c.intentId))];
      const orders = intentIds.length
        ? ((await manager.query(
            `SELECT p.id AS intent_id, o.id AS order_id, o.status AS order_status, o.amount AS order_amount, o.currency AS order_currency, o.amount_refunded
             FROM payments p JOIN orders o ON o.id = p.order_id WHERE p.id = ANY($1) ORDER BY o.id FOR UPDATE OF o`,
            [intentIds],
          )) as Array<LockedOrder & { intent_id: string }>)
        : [];
      // After the locks, in a statement of its own: see READ_PAYMENT.
      const payments = orders.length
        ? ((await manager.query(`SELECT id, status AS payment_status, last_event_created, dispute_id FROM payments WHERE id = ANY($1)`, [orders.map((o) => o.intent_id)])) as Array<
            HeldPayment & { id: string }
          >)
        : [];
      const state = new Map<
        string,
        { held: HeldState; paymentStatus: string; disputeId: string | null; lastEventId: string | null; orderChanged: boolean; applied: boolean }
      >();
      for (const o of orders) {
        const p = payments.find((x) => x.id === o.intent_id);
        if (!p) continue;
        state.set(o.intent_id, {
          held: {
            orderId: o.order_id,
            orderStatus: o.order_status as OrderStatus,
            orderAmount: o.order_amount,
            orderCurrency: o.order_currency,
            amountRefunded: o.amount_refunded,
            lastEventCreated: Number(p.last_event_created),
          },
          paymentStatus: p.payment_status,
          disputeId: p.dispute_id,
          lastEventId: null,
          orderChanged: false,
          applied: false,
        });
      }

      const history: Array<{ orderId: string; from: OrderStatus; to: OrderStatus; reason: string; eventId: string }> = [];
      candidates.sort((a, b) => a.event.created - b.event.created);
      for (const c of candidates) {
        const st = state.get(c.intentId);
        if (!st) {
          inbox.push({ id: c.id, status: 'ignored', outcome: 'unknown_object' });
          results.set(c.id, 'unknown_object');
          continue;
        }
        const decision = decide(st.held, c.fact);
        if (decision.needsPspState) continue; // the one-by-one path asks the PSP
        const reason = `${c.event.type}: ${decision.reason}`;
        const steps: OrderStatus[] = [];
        for (const to of decision.steps) {
          if (!canTransition(st.held.orderStatus, to)) continue;
          history.push({ orderId: st.held.orderId, from: st.held.orderStatus, to, reason, eventId: c.id });
          orderTransitions.inc({ from: st.held.orderStatus, to });
          st.held.orderStatus = to;
          steps.push(to);
          st.orderChanged = true;
        }
        if (decision.amountRefunded !== st.held.amountRefunded) st.orderChanged = true;
        if (c.event.created >= st.held.lastEventCreated) st.lastEventId = c.id;
        if (c.fact.kind === 'dispute' && !st.disputeId) st.disputeId = c.fact.disputeId;
        st.held.amountRefunded = decision.amountRefunded;
        st.held.lastEventCreated = decision.lastEventCreated;
        st.paymentStatus = decision.intentStatus ?? st.paymentStatus;
        st.applied = true;
        inbox.push({ id: c.id, status: 'processed', outcome: decision.outcome });
        results.set(c.id, decision.outcome);
        this.logger.log({ msg: 'event applied', eventId: c.id, orderId: st.held.orderId, type: c.event.type, outcome: decision.outcome, steps, status: st.held.orderStatus });
      }

      const changedOrders = [...state.values()].filter((st) => st.orderChanged);
      const paymentRows = [...state.entries()].filter(([, st]) => st.applied);
      const now = new Date();
      await manager.query(APPLY_EVENTS, [
        history.map((h) => h.orderId),
        history.map((h) => h.from),
        history.map((h) => h.to),
        now,
        history.map((h) => h.reason),
        history.map((h) => h.eventId),
        changedOrders.map((st) => st.held.orderId),
        changedOrders.map((st) => st.held.orderStatus),
        changedOrders.map((st) => st.held.amountRefunded),
        paymentRows.map(([id]) => id),
        paymentRows.map(([, st]) => st.paymentStatus),
        paymentRows.map(([, st]) => st.held.lastEventCreated),
        paymentRows.map(([, st]) => st.lastEventId),
        paymentRows.map(([, st]) => st.disputeId),
        inbox.map((i) => i.id),
        inbox.map((i) => i.status),
        inbox.map((i) => i.outcome),
      ]);
      return results;
    });
  }

  /**
   * Applies a PaymentIntent as retrieved now (the reconciler's stale check).
   * A change is recorded as an inbox row of its own (source 'reconciler'), so
   * every history entry names the record that caused it. Runs in the caller's transaction.
   */
  async applyCurrentIntent(manager: EntityManager, orderId: string, intent: Stripe.PaymentIntent): Promise<Decision | null> {
    const order = await lockOrder(manager, orderId);
    const payment = await manager.findOneBy(Payment, { id: intent.id });
    if (!order || !payment) return null;
    const decision = decide(heldState(order, payment), factFromIntent(intent, payment.lastEventCreated));
    let recordId: string | null = null;
    if (decision.steps.length > 0) {
      recordId = `rec_${intent.id}_${Date.now()}`;
      await manager.query(
        `INSERT INTO webhook_events (id, type, payload, event_created, source, status, attempts, outcome, received_at, processed_at)
         VALUES ($1, 'reconciler.payment_intent', $2, $3, 'reconciler', 'processed', 1, $4, now(), now())`,
        [recordId, JSON.stringify({ id: recordId, type: 'reconciler.payment_intent', data: { object: { id: intent.id, status: intent.status } } }), Math.floor(Date.now() / 1000), decision.outcome],
      );
    }
    await this.write(manager, order, payment, decision, recordId, `reconciler: ${decision.reason}`);
    if (decision.steps.length > 0) this.logger.log({ msg: 'payment reconciled', eventId: recordId, orderId, outcome: decision.outcome, steps: decision.steps });
    return decision;
  }

  private async write(
    manager: EntityManager,
    order: Order,
    payment: Payment,
    decision: Decision,
    eventId: string | null,
    reason: string,
    extra: Partial<Payment> = {},
  ): Promise<void> {
    const refundedChanged = decision.amountRefunded !== order.amountRefunded;
    order.amountRefunded = decision.amountRefunded;
    let moved = false;
    for (const to of decision.steps) moved = (await transitionOrder(manager, order, to, reason, eventId)) || moved;
    // transitionOrder writes amountRefunded with the status; without a step it is written here.
    if (refundedChanged && !moved) await manager.update(Order, { id: order.id }, { amountRefunded: order.amountRefunded, updatedAt: new Date() });
    // Any event for the payment counts as having checked it: the reconciler then leaves it alone.
    await manager.update(
      Payment,
      { id: payment.id },
      { ...extra, status: decision.intentStatus ?? payment.status, lastEventCreated: decision.lastEventCreated, checkedAt: new Date() },
    );
  }

  /** Records the refund's own status, then returns the PSP's figure: the sum of the charge's succeeded refunds. */
  private async recordRefund(manager: EntityManager, orderId: string, paymentIntentId: string, refund: { id: string; amount: number; status: string }): Promise<number> {
    const now = new Date();
    // OrdersService may have inserted it already (it records the PSP's answer to the refund request).
    const inserted = await manager
      .createQueryBuilder()
      .insert()
      .into(Refund)
      .values({ id: refund.id, orderId, paymentIntentId, amount: refund.amount, status: refund.status, createdAt: now, updatedAt: now })
      .orIgnore()
      .execute();
    if (!inserted.raw?.length) {
      const existing = await manager.findOneBy(Refund, { id: refund.id });
      const status = nextRefundStatus(existing?.status, refund.status);
      if (existing && existing.status !== status) await manager.update(Refund, { id: refund.id }, { status, updatedAt: now });
    }
    const [sum] = (await manager.query(`SELECT COALESCE(SUM(amount), 0)::int AS total FROM refunds WHERE payment_intent_id = $1 AND status = 'succeeded'`, [paymentIntentId])) as Array<{ total: number }>;
    return Number(sum?.total ?? 0);
  }

  private async finish(manager: EntityManager, eventId: string, status: 'processed' | 'ignored', outcome: EventOutcome): Promise<EventOutcome> {
    await manager.query(
      `UPDATE webhook_events SET status = $2, outcome = $3, attempts = attempts + 1, last_error = NULL, processed_at = now() WHERE id = $1`,
      [eventId, status, outcome],
    );
    return outcome;
  }
}

function heldState(order: Order, payment: Payment): HeldState {
  return {
    orderId: order.id,
    orderStatus: order.status,
    orderAmount: order.amount,
    orderCurrency: order.currency,
    amountRefunded: order.amountRefunded,
    lastEventCreated: payment.lastEventCreated,
  };
}
