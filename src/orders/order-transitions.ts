import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { CombinedWrite, Database, Queryable } from '../database/database';
import { Metrics } from '../metrics/metrics';
import { ORDER_EVENTS_OUTBOX, OrderEventsOutboxPort } from './order-events-outbox.port';
import { OrderStatus, canTransition } from './order-status';
import { HeldOrder, OrderRepository, TransitionRecord } from './order.repository';
import { CaptureFigures, Decision } from './payment-state';
import { UnexpectedPayment } from './payment.entity';

export type { HeldOrder, TransitionRecord } from './order.repository';

/**
 * One transaction's work on orders. Every order status change goes through
 * `transition`, the only place that checks the machine and records a
 * TransitionRecord; `OrderTransitions.run` writes the records (history) with
 * every other change in one statement, and counts them after the commit.
 *
 * Locks are taken through it (inbox rows first if any, then order rows in id
 * order), and other owners add their writes to the same statement with `also`.
 */
export class OrderUnitOfWork {
  readonly transitions: TransitionRecord[] = [];
  private readonly touched = new Set<HeldOrder>();
  private readonly others: Array<(write: CombinedWrite) => void> = [];

  constructor(
    readonly tx: Queryable,
    private readonly repo: OrderRepository,
    private readonly outbox?: OrderEventsOutboxPort,
  ) {}

  /** Orders by their own PaymentIntents, and by id (for payments that name an order but are not its own); keyed by the order's own PaymentIntent. */
  lockByIntent(intentIds: string[], orderIds: string[] = []): Promise<Map<string, HeldOrder>> {
    return this.repo.lockByIntent(this.tx, intentIds, orderIds);
  }

  lockByOrder(orderId: string): Promise<HeldOrder | null> {
    return this.repo.lockByOrder(this.tx, orderId);
  }

  /**
   * The order's Checkout Session has created `intentId`: from now on the
   * payment is keyed by it (written at once, under the order's lock). True when
   * it was attached now; false when the payment already has its PaymentIntent.
   */
  async attachIntent(h: HeldOrder, intentId: string): Promise<boolean> {
    if (!h.checkoutSessionId || h.intentId !== h.checkoutSessionId || intentId === h.intentId) return false;
    await this.repo.attachIntentToSession(this.tx, h.checkoutSessionId, intentId);
    h.intentId = intentId;
    this.touched.add(h);
    return true;
  }

  /** Records refunds' statuses under the held order's lock; returns the PSP's refunded total for the payment and what failed just now. */
  recordRefunds(h: HeldOrder, refunds: Array<{ id: string; amount: number; status: string }>): Promise<{ total: number; failed: number }> {
    return this.repo.recordRefunds(this.tx, h.held.orderId, h.intentId, refunds);
  }

  /**
   * The one writer of an order status change: false, changing nothing, when
   * the machine does not allow the step (a stale webhook is recorded, not an error).
   */
  transition(h: HeldOrder, to: OrderStatus, reason: string, eventId: string | null): boolean {
    const from = h.held.orderStatus;
    if (!canTransition(from, to)) return false;
    this.transitions.push({ orderId: h.held.orderId, from, to, reason, eventId });
    h.held.orderStatus = to;
    h.orderChanged = true;
    this.touched.add(h);
    return true;
  }

  /**
   * Applies a decision of the pure machine (payment-state.ts) to `h`: its steps
   * through `transition`, and the payment's new state. `eventCreated` is the
   * event's age, when an event caused it. Returns the steps taken.
   */
  applyDecision(h: HeldOrder, decision: Decision, reason: string, eventId: string | null, eventCreated?: number, disputeId?: string): OrderStatus[] {
    const steps = decision.steps.filter((to) => this.transition(h, to, reason, eventId));
    if (decision.amountRefunded !== h.held.amountRefunded) h.orderChanged = true;
    if (eventId && eventCreated !== undefined && eventCreated >= h.held.lastEventCreated) h.lastEventId = eventId;
    if (disputeId && !h.disputeId) h.disputeId = disputeId;
    h.held.amountRefunded = decision.amountRefunded;
    h.held.lastEventCreated = decision.lastEventCreated;
    if (decision.capture) this.setCaptureFigures(h, decision.capture);
    if (decision.dispute) {
      h.held.dispute = decision.dispute;
      h.disputeChanged = true;
    }
    if (decision.statusBeforeDispute && decision.statusBeforeDispute !== h.held.statusBeforeDispute) {
      h.held.statusBeforeDispute = decision.statusBeforeDispute;
      h.orderChanged = true;
    }
    if (steps.includes('needs_review')) this.setReviewReason(h, decision.reason);
    this.setPaymentStatus(h, decision.intentStatus ?? h.paymentStatus);
    return steps;
  }

  /** What the PSP holds and has captured for the payment, as it last reported. */
  setCaptureFigures(h: HeldOrder, figures: CaptureFigures): void {
    h.amountCapturable = figures.amountCapturable;
    if (figures.amountCaptured !== null) h.held.amountCaptured = figures.amountCaptured;
    if (figures.captureBefore !== undefined) h.captureBefore = figures.captureBefore;
    this.touched.add(h);
  }

  setReviewReason(h: HeldOrder, reason: string): void {
    h.reviewReason = reason;
    h.orderChanged = true;
    this.touched.add(h);
  }

  /** Lists a payment the order did not ask for (written with the other changes; listing it again updates its status). */
  addUnexpectedPayment(h: HeldOrder, payment: UnexpectedPayment): void {
    // Both events of one payment (charge and PaymentIntent) may be in one batch: one row.
    const same = h.unexpected.findIndex((u) => u.id === payment.id);
    if (same >= 0) h.unexpected[same] = payment;
    else h.unexpected.push(payment);
    this.touched.add(h);
  }

  /** Unexpected payments this unit lists for the first time (known at flush): counted and logged after the commit. */
  readonly newUnexpected: Array<{ orderId: string; orderPaymentId: string; payment: UnexpectedPayment }> = [];

  /** The PaymentIntent's status as the PSP reported it; the payment row is written (and counts as checked). */
  setPaymentStatus(h: HeldOrder, status: string): void {
    h.paymentStatus = status;
    this.touched.add(h);
  }

  /** A write of another table's owner, sent in the same statement as the order changes. */
  also(add: (write: CombinedWrite) => void): void {
    this.others.push(add);
  }

  /** Everything gathered, as one statement (none when nothing changed), then the outbox's one statement when a status changed. */
  async flush(): Promise<void> {
    const listed = [...this.touched].flatMap((h) => h.unexpected.map((payment) => ({ orderId: h.held.orderId, orderPaymentId: h.intentId, payment })));
    if (listed.length > 0) {
      const known = new Set(await this.repo.unexpectedPaymentIdsAmong(this.tx, listed.map((u) => u.payment.id)));
      this.newUnexpected.push(...listed.filter((u) => !known.has(u.payment.id)));
    }
    const write = new CombinedWrite();
    const at = new Date();
    // The per-transition writes happen here, from this.transitions: history, then the outgoing order events.
    this.repo.addChanges(write, this.transitions, [...this.touched], at);
    for (const add of this.others) add(write);
    await write.run(this.tx);
    // A statement of its own: the events' order views read what the statement above wrote (its CTEs could not see each other's writes).
    if (this.outbox && this.transitions.length > 0) {
      await this.outbox.record(
        this.tx,
        this.transitions.map((t) => ({ ...t, at })),
        (batch) => this.repo.transitionViewsSql(batch),
      );
    }
  }
}

/**
 * Runs work on orders in one transaction: the path of every status change
 * (webhook events one or many at a time, the reconciler, cancel).
 */
@Injectable()
export class OrderTransitions {
  private readonly logger = new Logger(OrderTransitions.name);

  constructor(
    private readonly db: Database,
    private readonly repo: OrderRepository,
    private readonly metrics: Metrics,
    @Optional() @Inject(ORDER_EVENTS_OUTBOX) private readonly outbox?: OrderEventsOutboxPort,
  ) {}

  /**
   * Opens a transaction, lets `work` lock and decide through the unit of work,
   * writes what it gathered, commits, and only then counts the transitions: a
   * transaction that rolls back (and is retried) counts nothing.
   */
  async run<T>(work: (uow: OrderUnitOfWork) => Promise<T>): Promise<T> {
    let uow: OrderUnitOfWork | undefined;
    const result = await this.db.transaction(async (tx) => {
      uow = new OrderUnitOfWork(tx, this.repo, this.outbox);
      const value = await work(uow);
      await uow.flush();
      return value;
    });
    for (const t of uow?.transitions ?? []) this.metrics.orderTransitions.inc({ from: t.from, to: t.to });
    for (const u of uow?.newUnexpected ?? []) {
      this.metrics.unexpectedPayments.inc();
      this.logger.warn({ msg: 'unexpected payment on an order', orderId: u.orderId, orderPaymentId: u.orderPaymentId, unexpectedPaymentId: u.payment.id, amount: u.payment.amount, currency: u.payment.currency });
    }
    return result;
  }
}
