import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type Stripe from 'stripe';
import { DataSource, EntityManager } from 'typeorm';
import { OrderStatus, canTransition } from '../orders/order-status';
import { orderTransitions } from '../metrics/metrics';
import { Refund } from './refund.entity';
import { Decision, HeldState, PspFact, decide, factFromIntent, nextRefundStatus, readEvent } from './payment-state';
import { StripeClient } from './psp/stripe.client';
import { OrderEventsOutbox } from '../order-events/order-events.outbox'; // outbox hook

/** What became of one inbox event. */
export type EventOutcome = Decision['outcome'] | 'unknown_type' | 'unknown_object' | 'already_done' | 'missing';

/** An order and its payment as held under the order row lock, and what applying facts changed. */
interface Held {
  intentId: string;
  held: HeldState;
  paymentStatus: string;
  disputeId: string | null;
  lastEventId: string | null;
  orderChanged: boolean;
}

/**
 * Locks the orders that own these PaymentIntents, in id order so two
 * transactions never wait on each other in a cycle (the lock order is always
 * inbox rows -> order rows -> payment rows).
 */
const LOCK_ORDERS_BY_INTENT = `SELECT p.id AS intent_id, o.id AS order_id, o.status AS order_status, o.amount AS order_amount,
    o.currency AS order_currency, o.amount_refunded
  FROM payments p JOIN orders o ON o.id = p.order_id WHERE p.id = ANY($1) ORDER BY o.id FOR UPDATE OF o`;

/**
 * Read after the order locks, in a statement of its own: a statement that
 * waited for a row lock sees the newest version of the locked row only, while
 * the other rows of its join stay as they were when it started (READ COMMITTED
 * rechecks), so a payment row read in the locking statement could be one commit old.
 */
const READ_PAYMENTS = `SELECT id, status, last_event_created, dispute_id FROM payments WHERE id = ANY($1)`;

/**
 * Every write of the applied facts in one statement (one round trip, however
 * many events): history entries in order, changed orders, payments, inbox
 * rows, all in the caller's transaction.
 */
const WRITE_CHANGES = `WITH history AS (
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

/** The writes of applied facts, gathered in memory and written by WRITE_CHANGES. */
class Changes {
  private readonly history: Array<{ orderId: string; from: OrderStatus; to: OrderStatus; reason: string; eventId: string | null }> = [];
  private readonly inbox: Array<{ id: string; status: 'processed' | 'ignored'; outcome: EventOutcome }> = [];
  private readonly touched = new Set<Held>();

  constructor(private readonly outbox: OrderEventsOutbox) {} // outbox hook

  /**
   * Applies a decision to `h` (mutating it): the steps the machine allows, each
   * one history entry. `eventCreated` is the event's age, when an event caused it.
   */
  apply(h: Held, decision: Decision, reason: string, eventId: string | null, eventCreated?: number, disputeId?: string): OrderStatus[] {
    const steps: OrderStatus[] = [];
    for (const to of decision.steps) {
      if (!canTransition(h.held.orderStatus, to)) continue;
      this.history.push({ orderId: h.held.orderId, from: h.held.orderStatus, to, reason, eventId });
      orderTransitions.inc({ from: h.held.orderStatus, to });
      h.held.orderStatus = to;
      steps.push(to);
      h.orderChanged = true;
    }
    if (decision.amountRefunded !== h.held.amountRefunded) h.orderChanged = true;
    if (eventId && eventCreated !== undefined && eventCreated >= h.held.lastEventCreated) h.lastEventId = eventId;
    if (disputeId && !h.disputeId) h.disputeId = disputeId;
    h.held.amountRefunded = decision.amountRefunded;
    h.held.lastEventCreated = decision.lastEventCreated;
    h.paymentStatus = decision.intentStatus ?? h.paymentStatus;
    // Touched: its payment row is written (and counts as checked).
    this.touched.add(h);
    return steps;
  }

  markInbox(id: string, status: 'processed' | 'ignored', outcome: EventOutcome): void {
    this.inbox.push({ id, status, outcome });
  }

  async write(manager: EntityManager): Promise<void> {
    const orders = [...this.touched].filter((h) => h.orderChanged);
    const payments = [...this.touched];
    const now = new Date(); // outbox hook: the events carry the history entries' time
    await manager.query(WRITE_CHANGES, [
      this.history.map((e) => e.orderId),
      this.history.map((e) => e.from),
      this.history.map((e) => e.to),
      now,
      this.history.map((e) => e.reason),
      this.history.map((e) => e.eventId),
      orders.map((h) => h.held.orderId),
      orders.map((h) => h.held.orderStatus),
      orders.map((h) => h.held.amountRefunded),
      payments.map((h) => h.intentId),
      payments.map((h) => h.paymentStatus),
      payments.map((h) => h.held.lastEventCreated),
      payments.map((h) => h.lastEventId),
      payments.map((h) => h.disputeId),
      this.inbox.map((i) => i.id),
      this.inbox.map((i) => i.status),
      this.inbox.map((i) => i.outcome),
    ]);
    await this.outbox.record(manager, this.history.map((e) => ({ ...e, at: now }))); // outbox hook
  }
}

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

interface InboxRow {
  id: string;
  payload: string;
  status: string;
}

/**
 * Applies PSP facts to orders. Each application is one transaction that locks
 * the order rows, asks the pure machine (payment-state.ts), writes the change
 * and its history, and records the inbox rows as applied: so a status change
 * and the event that caused it commit together or not at all.
 */
@Injectable()
export class PaymentApplier {
  private readonly logger = new Logger(PaymentApplier.name);

  constructor(@InjectDataSource() private readonly db: DataSource, private readonly psp: StripeClient, private readonly outbox: OrderEventsOutbox) {} // outbox hook

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
    const [row] = await lockInboxRows(manager, [eventId]);
    if (!row) return 'missing';
    if (row.status === 'processed' || row.status === 'ignored') return 'already_done';
    const event = JSON.parse(row.payload) as Stripe.Event;
    const read = readEvent(event);
    const changes = new Changes(this.outbox); // outbox hook
    const ignore = async (outcome: EventOutcome) => {
      changes.markInbox(eventId, 'ignored', outcome);
      await changes.write(manager);
      return outcome;
    };
    if (!read) return ignore('unknown_type');

    let intentId = read.paymentIntentId;
    if (!intentId && read.chargeId) {
      if (answers.chargeIntentId === undefined) throw new NeedsPsp(undefined, read.chargeId);
      intentId = answers.chargeIntentId;
    }
    const h = intentId ? (await lockHeld(manager, [intentId])).get(intentId) : undefined;
    if (!h || !intentId) return ignore('unknown_object');

    let fact: PspFact = read.fact;
    if (read.refund) fact = { kind: 'refund', amountRefunded: await this.recordRefund(manager, h.held.orderId, intentId, read.refund), created: fact.created };
    let decision = decide(h.held, fact);
    if (decision.needsPspState) {
      if (!answers.intent) throw new NeedsPsp(intentId);
      decision = decide(h.held, factFromIntent(answers.intent, fact.created));
    }
    this.applyDecision(changes, h, eventId, event, fact, decision);
    await changes.write(manager);
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
      const rows = await lockInboxRows(manager, ids);
      const changes = new Changes(this.outbox); // outbox hook
      const candidates: Array<{ id: string; event: Stripe.Event; intentId: string; fact: PspFact }> = [];
      const found = new Set(rows.map((r) => r.id));
      for (const id of ids) if (!found.has(id)) results.set(id, 'missing');
      for (const row of rows) {
        if (row.status === 'processed' || row.status === 'ignored') {
          results.set(row.id, 'already_done');
          continue;
        }
        const event = JSON.parse(row.payload) as Stripe.Event;
        const read = readEvent(event);
        if (!read) {
          changes.markInbox(row.id, 'ignored', 'unknown_type');
          results.set(row.id, 'unknown_type');
        } else if (read.paymentIntentId && !read.refund) {
          candidates.push({ id: row.id, event, intentId: read.paymentIntentId, fact: read.fact });
        }
      }

      const held = await lockHeld(manager, [...new Set(candidates.map((c) => c.intentId))]);
      candidates.sort((a, b) => a.event.created - b.event.created);
      for (const c of candidates) {
        const h = held.get(c.intentId);
        if (!h) {
          changes.markInbox(c.id, 'ignored', 'unknown_object');
          results.set(c.id, 'unknown_object');
          continue;
        }
        const decision = decide(h.held, c.fact);
        if (decision.needsPspState) continue; // the one-by-one path asks the PSP
        this.applyDecision(changes, h, c.id, c.event, c.fact, decision);
        results.set(c.id, decision.outcome);
      }
      await changes.write(manager);
      return results;
    });
  }

  /** One event's decision, the same for a batch and one event: its steps and its inbox row, gathered in `changes`. */
  private applyDecision(changes: Changes, h: Held, eventId: string, event: Stripe.Event, fact: PspFact, decision: Decision): void {
    const steps = changes.apply(h, decision, `${event.type}: ${decision.reason}`, eventId, event.created, fact.kind === 'dispute' ? fact.disputeId : undefined);
    changes.markInbox(eventId, 'processed', decision.outcome);
    this.logger.log({ msg: 'event applied', eventId, orderId: h.held.orderId, type: event.type, outcome: decision.outcome, steps, status: h.held.orderStatus });
  }

  /**
   * Applies a PaymentIntent as retrieved now (the reconciler's stale check).
   * A change is recorded as an inbox row of its own (source 'reconciler'), so
   * every history entry names the record that caused it. Runs in the caller's transaction.
   */
  async applyCurrentIntent(manager: EntityManager, intent: Stripe.PaymentIntent): Promise<Decision | null> {
    const h = (await lockHeld(manager, [intent.id])).get(intent.id);
    if (!h) return null;
    const decision = decide(h.held, factFromIntent(intent, h.held.lastEventCreated));
    let recordId: string | null = null;
    if (decision.steps.length > 0) {
      recordId = `rec_${intent.id}_${Date.now()}`;
      await manager.query(
        `INSERT INTO webhook_events (id, type, payload, event_created, source, status, attempts, outcome, received_at, processed_at)
         VALUES ($1, 'reconciler.payment_intent', $2, $3, 'reconciler', 'processed', 1, $4, now(), now())`,
        [recordId, JSON.stringify({ id: recordId, type: 'reconciler.payment_intent', data: { object: { id: intent.id, status: intent.status } } }), Math.floor(Date.now() / 1000), decision.outcome],
      );
    }
    const changes = new Changes(this.outbox); // outbox hook
    const steps = changes.apply(h, decision, `reconciler: ${decision.reason}`, recordId);
    await changes.write(manager);
    if (steps.length > 0) this.logger.log({ msg: 'payment reconciled', eventId: recordId, orderId: h.held.orderId, outcome: decision.outcome, steps });
    return decision;
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
}

/** Locks inbox rows in id order (the first lock every application takes). */
function lockInboxRows(manager: EntityManager, ids: string[]): Promise<InboxRow[]> {
  return manager.query(`SELECT id, payload, status FROM webhook_events WHERE id = ANY($1) ORDER BY id FOR UPDATE`, [ids]) as Promise<InboxRow[]>;
}

/** Locks the orders owning these PaymentIntents and reads their payments fresh; keyed by PaymentIntent id. */
async function lockHeld(manager: EntityManager, intentIds: string[]): Promise<Map<string, Held>> {
  const out = new Map<string, Held>();
  if (intentIds.length === 0) return out;
  const orders = (await manager.query(LOCK_ORDERS_BY_INTENT, [intentIds])) as Array<{
    intent_id: string;
    order_id: string;
    order_status: OrderStatus;
    order_amount: number;
    order_currency: string;
    amount_refunded: number;
  }>;
  if (orders.length === 0) return out;
  const payments = (await manager.query(READ_PAYMENTS, [orders.map((o) => o.intent_id)])) as Array<{
    id: string;
    status: string;
    last_event_created: string;
    dispute_id: string | null;
  }>;
  const paymentById = new Map(payments.map((p) => [p.id, p]));
  for (const o of orders) {
    const p = paymentById.get(o.intent_id);
    if (!p) continue;
    out.set(o.intent_id, {
      intentId: o.intent_id,
      held: {
        orderId: o.order_id,
        orderStatus: o.order_status,
        orderAmount: o.order_amount,
        orderCurrency: o.order_currency,
        amountRefunded: o.amount_refunded,
        lastEventCreated: Number(p.last_event_created),
      },
      paymentStatus: p.status,
      disputeId: p.dispute_id,
      lastEventId: null,
      orderChanged: false,
    });
  }
  return out;
}
