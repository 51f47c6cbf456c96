import { Injectable, Logger } from '@nestjs/common';
import type Stripe from 'stripe';
import { HeldOrder, OrderTransitions, OrderUnitOfWork } from '../orders/order-transitions';
import { Decision, PaymentFact, PspFact, ReadEvent, decide, decideForeign, factFromIntent, factFromSession, readEvent } from '../orders/payment-state';
import { isOrderId } from '../orders/order.entity';
import { UnexpectedPayment } from '../orders/payment.entity';
import { Metrics } from '../metrics/metrics';
import { PspClient } from '../psp/psp-client';
import { SDK_API_VERSION } from '../psp/stripe.client';
import { InboxMark, InboxRepository } from './webhook-inbox.repository';
import type { TransactionTurn } from './transaction-turn';

/** What became of one inbox event. */
export type EventOutcome = Decision['outcome'] | 'unknown_type' | 'unknown_object' | 'already_done' | 'missing';

/** What the PSP told us about one event, asked between transactions. */
interface PspAnswer {
  /** The PaymentIntent a charge belongs to, for refunds and disputes that name only the charge. */
  chargeIntentId?: string | null;
  /** The PaymentIntent now, for an event of the same second as the last one applied. */
  intent?: Stripe.PaymentIntent;
  /** The charge's refunds now, for a refund that failed: the ledger takes the current truth with it. */
  chargeRefunds?: Array<{ id: string; amount: number; status: string }>;
}

/** An event a transaction could not decide alone: what to ask the PSP before the next one. */
interface PspQuestion {
  eventId: string;
  chargeId?: string;
  paymentIntentId?: string;
  /** The charge whose refunds to list. */
  refundsOfCharge?: string;
}

/** Charge -> PaymentIntent, then PaymentIntent state or the charge's refunds: at most two questions make an event decidable. */
const MAX_PSP_ROUNDS = 2;

/** Refund statuses that end it without the money going back. */
const REFUND_ENDED = ['failed', 'canceled'];

/**
 * Applies PSP facts to orders. One path for one event or many: a transaction
 * locks the inbox rows, then the orders (both in id order, so two batches
 * never wait on each other in a cycle), asks the pure machine
 * (orders/payment-state.ts) for each event in `created` order, and writes
 * every change, its history and the inbox rows in one statement (through the
 * order transition writer). An event that needs the PSP (a charge's
 * PaymentIntent, or the PaymentIntent's state when `created` cannot order two
 * events) is left for a second transaction after the PSP is asked, never
 * while a lock is held.
 */
@Injectable()
export class PaymentApplier {
  private readonly logger = new Logger(PaymentApplier.name);

  /** API versions already logged as differing from the SDK's: one line each, the metric counts every event. */
  private readonly versionsLogged = new Set<string>();

  constructor(
    private readonly transitions: OrderTransitions,
    private readonly inbox: InboxRepository,
    private readonly psp: PspClient,
    private readonly metrics: Metrics,
  ) {}

  /** An event in another API version than the SDK's may carry fields renamed or missing: counted, and said once per version. */
  private checkApiVersion(event: Stripe.Event): void {
    const version = event.api_version;
    if (!version || version === SDK_API_VERSION) return;
    this.metrics.eventApiVersionMismatch.inc({ api_version: version });
    if (this.versionsLogged.has(version)) return;
    this.versionsLogged.add(version);
    this.logger.warn({ msg: "PSP events arrive in another API version than the SDK's: set the webhook endpoint's version to the SDK's (npm run stripe:webhook-endpoint)", eventApiVersion: version, sdkApiVersion: SDK_API_VERSION, eventId: event.id });
  }

  /**
   * Applies these inbox events; safe to call any number of times for the same
   * event. Each id gets its outcome, or the Error of the PSP look-up it needed
   * (that event alone fails). Throws when a transaction fails: nothing of it
   * was written or counted. With a `turn`, each transaction waits for it
   * (the processor's one at a time); the PSP is asked outside it.
   */
  async applyEvents(ids: string[], turn?: TransactionTurn): Promise<Map<string, EventOutcome | Error>> {
    const results = new Map<string, EventOutcome | Error>();
    const answers = new Map<string, PspAnswer>();
    let pending = [...new Set(ids)];
    for (let round = 0; pending.length > 0; round++) {
      const unit = () => this.transitions.run((uow) => this.applyInUnit(uow, pending, answers, results));
      const questions = await (turn ? turn.run(unit) : unit());
      if (round === MAX_PSP_ROUNDS) {
        for (const q of questions) results.set(q.eventId, new Error('the PSP did not make this event decidable'));
        break;
      }
      await Promise.all(questions.map((q) => this.ask(q, answers, results)));
      pending = questions.map((q) => q.eventId).filter((id) => !(results.get(id) instanceof Error));
    }
    return results;
  }

  /** One PSP question, outside any transaction; a failure fails only its event. */
  private async ask(q: PspQuestion, answers: Map<string, PspAnswer>, results: Map<string, EventOutcome | Error>): Promise<void> {
    const answer = answers.get(q.eventId) ?? {};
    try {
      if (q.refundsOfCharge) {
        const charge = await this.psp.retrieveCharge(q.refundsOfCharge);
        answer.chargeRefunds = (charge.refunds?.data ?? []).map((r) => ({ id: r.id, amount: r.amount, status: r.status ?? 'pending' }));
      } else if (q.chargeId) {
        const charge = await this.psp.retrieveCharge(q.chargeId);
        answer.chargeIntentId = typeof charge.payment_intent === 'string' ? charge.payment_intent : (charge.payment_intent?.id ?? null);
      } else if (q.paymentIntentId) {
        answer.intent = await this.psp.retrievePaymentIntent(q.paymentIntentId);
      }
      answers.set(q.eventId, answer);
    } catch (err) {
      results.set(q.eventId, err as Error);
    }
  }

  /** One transaction's work; returns the events it left for the PSP to answer. */
  private async applyInUnit(uow: OrderUnitOfWork, ids: string[], answers: Map<string, PspAnswer>, results: Map<string, EventOutcome | Error>): Promise<PspQuestion[]> {
    const questions: PspQuestion[] = [];
    const marks: InboxMark[] = [];
    const mark = (id: string, status: InboxMark['status'], outcome: EventOutcome) => {
      marks.push({ id, status, outcome });
      results.set(id, outcome);
    };
    const rows = await this.inbox.lockRows(uow.tx, ids);
    const found = new Set(rows.map((r) => r.id));
    for (const id of ids) if (!found.has(id)) results.set(id, 'missing');

    const candidates: Array<{ id: string; event: Stripe.Event; read: ReadEvent; intentId: string }> = [];
    for (const row of rows) {
      if (row.status === 'processed' || row.status === 'ignored') {
        results.set(row.id, 'already_done');
        continue;
      }
      const event = JSON.parse(row.payload) as Stripe.Event;
      this.checkApiVersion(event);
      const read = readEvent(event);
      if (!read) {
        mark(row.id, 'ignored', 'unknown_type');
        continue;
      }
      let intentId = read.paymentIntentId ?? read.checkoutSessionId ?? null;
      if (!intentId && read.chargeId) {
        const answer = answers.get(row.id);
        if (answer?.chargeIntentId === undefined) {
          questions.push({ eventId: row.id, chargeId: read.chargeId });
          continue;
        }
        intentId = answer.chargeIntentId;
      }
      if (intentId) candidates.push({ id: row.id, event, read, intentId });
      else mark(row.id, 'ignored', 'unknown_object');
    }

    // Payments naming an order in metadata are locked with it too, in the same statement (one lock order): they may not be its own.
    const namedOrders = candidates.map((c) => (c.read.fact.kind === 'payment' ? c.read.fact.orderIdInMetadata : undefined)).filter((id): id is string => !!id && isOrderId(id));
    const keys = candidates.flatMap((c) => [c.intentId, ...(c.read.checkoutSessionId ? [c.read.checkoutSessionId] : [])]);
    const held = await uow.lockByIntent([...new Set(keys)], [...new Set(namedOrders)]);
    const heldByOrder = new Map([...held.values()].map((h) => [h.held.orderId, h]));
    candidates.sort((a, b) => a.event.created - b.event.created);
    for (const c of candidates) {
      let h = held.get(c.intentId) ?? (c.read.checkoutSessionId ? held.get(c.read.checkoutSessionId) : undefined);
      if (!h) {
        // A PaymentIntent the order's Checkout Session created, seen before the session's own event named it: the order's own.
        const named = c.read.fact.kind === 'payment' && c.read.fact.orderIdInMetadata ? heldByOrder.get(c.read.fact.orderIdInMetadata) : undefined;
        if (named && (await uow.attachIntent(named, c.intentId))) h = named;
      } else if (c.read.paymentIntentId && c.read.paymentIntentId !== h.intentId) {
        await uow.attachIntent(h, c.read.paymentIntentId);
      }
      if (h) held.set(h.intentId, h);
      if (!h) {
        const named = c.read.fact.kind === 'payment' && c.read.fact.orderIdInMetadata ? heldByOrder.get(c.read.fact.orderIdInMetadata) : undefined;
        // Only an order whose own payment is recorded: before that, this may be its own PaymentIntent arriving early.
        if (named && c.read.fact.kind === 'payment') {
          const decision = decideForeign(named.held, c.read.fact, c.intentId);
          this.apply(uow, named, c.id, c.event, c.read.fact, decision, c.intentId);
          mark(c.id, 'processed', decision.outcome);
        } else {
          mark(c.id, 'ignored', 'unknown_object');
        }
        continue;
      }
      let fact: PspFact = c.read.fact;
      let refunds = c.read.refund ? [c.read.refund] : (c.read.refunds ?? []);
      if (c.read.refund && REFUND_ENDED.includes(c.read.refund.status) && c.read.chargeId) {
        // A refund that failed: the other refunds' statuses now come with it, so older snapshots delivered
        // after this one cannot bring back a state the PSP has left (each status only moves forward).
        const now = answers.get(c.id)?.chargeRefunds;
        if (!now) {
          questions.push({ eventId: c.id, refundsOfCharge: c.read.chargeId });
          continue;
        }
        refunds = [c.read.refund, ...now.filter((r) => r.id !== c.read.refund!.id)];
      }
      if (refunds.length > 0 && fact.kind === 'refund') {
        // Our ledger of the charge's refunds (each status only moves forward) gives the total, and tells a refund that failed.
        const ledger = await uow.recordRefunds(h, refunds);
        fact = { ...fact, amountRefunded: ledger.total, ...(ledger.failed > 0 ? { failed: ledger.failed } : {}) };
      }
      let decision = decide(h.held, fact);
      if (decision.needsPspState) {
        const intent = answers.get(c.id)?.intent;
        if (!intent) {
          questions.push({ eventId: c.id, paymentIntentId: c.intentId });
          continue;
        }
        decision = decide(h.held, factFromIntent(intent, fact.created));
      }
      this.apply(uow, h, c.id, c.event, fact, decision);
      mark(c.id, 'processed', decision.outcome);
    }
    uow.also((write) => this.inbox.addMarks(write, marks));
    return questions;
  }

  /** `paymentId` is the PaymentIntent the event concerns when it is not the order's own. */
  private apply(uow: OrderUnitOfWork, h: HeldOrder, eventId: string, event: Stripe.Event, fact: PspFact, decision: Decision, paymentId = h.intentId): void {
    const disputeId = fact.kind === 'dispute' ? fact.disputeId : undefined;
    if (paymentId !== h.intentId) {
      // Not the order's payment: none of its figures or its age apply to the order's own.
      if (decision.unexpectedPayment && fact.kind === 'payment') uow.addUnexpectedPayment(h, unexpectedOf(paymentId, fact, h));
      const steps = decision.steps.filter((to) => uow.transition(h, to, `${event.type}: ${decision.reason}`, eventId));
      if (steps.includes('needs_review')) uow.setReviewReason(h, decision.reason);
      this.logger.log({ msg: 'event applied', eventId, orderId: h.held.orderId, type: event.type, outcome: decision.outcome, steps, status: h.held.orderStatus, paymentId });
      return;
    }
    if (decision.unexpectedPayment && fact.kind === 'payment') uow.addUnexpectedPayment(h, unexpectedOf(paymentId, fact, h));
    const steps = uow.applyDecision(h, decision, `${event.type}: ${decision.reason}`, eventId, event.created, disputeId);
    this.logger.log({ msg: 'event applied', eventId, orderId: h.held.orderId, type: event.type, outcome: decision.outcome, steps, status: h.held.orderStatus });
  }

  /**
   * Applies a Checkout Session as retrieved (by the reconciler): its
   * PaymentIntent, once it has one (attached to the order's payment), or else
   * the session's own state (expired, or still open).
   */
  async applyRetrievedSession(session: Stripe.Checkout.Session): Promise<Decision | null> {
    const intent = typeof session.payment_intent === 'object' && session.payment_intent ? session.payment_intent : null;
    return this.transitions.run(async (uow) => {
      const h = (await uow.lockByIntent([session.id])).get(session.id);
      if (!h) return null;
      if (intent) await uow.attachIntent(h, intent.id);
      const fact = intent ? factFromIntent(intent, h.held.lastEventCreated) : factFromSession(session, undefined, h.held.lastEventCreated);
      if (!fact) return null;
      return this.applyRetrieved(uow, h, fact, intent?.id ?? session.id, `reconciler.${intent ? 'payment_intent' : 'checkout_session'}`);
    });
  }

  /**
   * Applies a PaymentIntent as retrieved (by the reconciler, before this
   * transaction) in a short transaction of its own. A change is recorded as an
   * inbox row of its own (source 'reconciler'), so every history entry names
   * the record that caused it.
   */
  async applyRetrievedIntent(intent: Stripe.PaymentIntent): Promise<Decision | null> {
    return this.transitions.run(async (uow) => {
      const h = (await uow.lockByIntent([intent.id])).get(intent.id);
      if (!h) return null;
      return this.applyRetrieved(uow, h, factFromIntent(intent, h.held.lastEventCreated), intent.id, 'reconciler.payment_intent');
    });
  }

  /** A retrieved object's facts through the machine; a change is recorded as an inbox row of its own, the cause of its history entries. */
  private applyRetrieved(uow: OrderUnitOfWork, h: HeldOrder, fact: PaymentFact, objectId: string, recordType: string): Decision {
    const decision = decide(h.held, fact);
    if (decision.unexpectedPayment) uow.addUnexpectedPayment(h, unexpectedOf(objectId, fact, h));
    let recordId: string | null = null;
    if (decision.steps.length > 0) {
      recordId = `rec_${objectId}_${Date.now()}`;
      const payload = JSON.stringify({ id: recordId, type: recordType, data: { object: { id: objectId, status: fact.intentStatus } } });
      uow.also((write) => this.inbox.addReconcilerRecord(write, { id: recordId as string, payload, outcome: decision.outcome }));
    }
    const steps = uow.applyDecision(h, decision, `reconciler: ${decision.reason}`, recordId);
    if (steps.length > 0) this.logger.log({ msg: 'payment reconciled', eventId: recordId, orderId: h.held.orderId, outcome: decision.outcome, steps });
    return decision;
  }
}

/** The unexpected payment to list, from what the PSP said of it. */
function unexpectedOf(paymentId: string, fact: PaymentFact, h: HeldOrder): UnexpectedPayment {
  return { id: paymentId, amount: fact.amount ?? 0, currency: fact.currency ?? h.held.orderCurrency, status: fact.intentStatus };
}

