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
