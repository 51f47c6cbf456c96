import { Inject, Injectable, Logger } from '@nestjs/common';
import type Stripe from 'stripe';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { createHash, randomUUID } from 'node:crypto';
import { DomainError, ErrorCode } from '../common/errors/domain-error';
import { Database } from '../database/database';
import { PspClient } from '../psp/psp-client';
import { CreateOrderDto } from './dto/create-order.dto';
import { ListOrdersQuery } from './dto/list-orders.query';
import { OrderView, toOrderView } from './dto/order.view';
import { Order, isOrderId } from './order.entity';
import { OrderRepository, OrderWithPayment } from './order.repository';
import { EXPIRABLE_STATUSES, INITIAL_STATUS, REFUNDABLE_STATUSES, UNPAID_STATUSES } from './order-status';
import { HeldOrder, OrderTransitions, OrderUnitOfWork } from './order-transitions';
import { DisputeRecord, captureOfIntent, decide, factFromDispute, factFromIntent } from './payment-state';
import { Payment } from './payment.entity';
import { checkAmount } from './currencies';
import { idempotencyKeyCutoff } from './idempotency-expiry';

/** Stripe's largest amount for a single charge, in minor units. */
const MAX_ORDER_AMOUNT = 99_999_999;
const PG_UNIQUE_VIOLATION = '23505';
/** Dispute statuses that still take evidence or acceptance. */
const OPEN_DISPUTE_STATUSES = ['needs_response', 'warning_needs_response'];
/** Stripe's bounds on a Checkout Session's expires_at. */
const SESSION_MIN_MS = 30 * 60_000;
const SESSION_MAX_MS = 24 * 3600_000;
const PG_FOREIGN_KEY_VIOLATION = '23503';

export interface CreateOrderResult {
  order: OrderView;
  /** false when an Idempotency-Key replay returned an order created earlier. */
  created: boolean;
}

@Injectable()
export class OrdersService {
  private readonly logger = new Logger(OrdersService.name);

  constructor(
    private readonly db: Database,
    private readonly orders: OrderRepository,
    private readonly transitions: OrderTransitions,
    private readonly psp: PspClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * Creates the order, then its PaymentIntent, with no transaction or lock
   * held across the PSP call:
   * 1. one short transaction inserts the order and its Idempotency-Key (a
   *    concurrent request with the same key waits on the key's unique index
   *    for the few milliseconds until it commits, then replays it);
   * 2. the PSP creates the PaymentIntent under a key derived from the order
   *    id, so any retry of this step gets the same PaymentIntent back;
   * 3. one statement records the payment. Until then the order is not shown
   *    (GET and the list only show orders with a payment).
   * If the PSP fails (503 outage, 502 refusal, 409 still running), the order
   * and its key are removed, so nothing half-made remains and a retry with the
   * same Idempotency-Key starts afresh.
   */
  async create(dto: CreateOrderDto, idempotencyKey?: string): Promise<CreateOrderResult> {
    const amount = dto.items.reduce((sum, item) => sum + item.unitAmount * item.quantity, 0);
    if (amount <= 0) throw new DomainError(ErrorCode.Validation, 'items must add up to an amount greater than 0');
    if (amount > MAX_ORDER_AMOUNT) {
      throw new DomainError(ErrorCode.Validation, `items add up to ${amount}, more than the largest payable amount ${MAX_ORDER_AMOUNT}`);
    }
    const outOfLimits = checkAmount(dto.currency, amount);
    if (outOfLimits) throw new DomainError(ErrorCode.Validation, outOfLimits.message);
    const requestHash = idempotencyKey ? hashRequest(dto) : '';
    const now = new Date();
    const order: Order = {
      id: randomUUID(),
      status: INITIAL_STATUS,
      amount,
      currency: dto.currency,
      items: dto.items.map(({ sku, name, unitAmount, quantity }) => ({ sku, name, unitAmount, quantity })),
      customerEmail: dto.customerEmail,
      amountRefunded: 0,
      captureMethod: dto.captureMethod ?? this.config.captureMethod,
      reviewReason: null,
      createdAt: now,
      updatedAt: now,
    };
    try {
      if (idempotencyKey) {
        await this.db.transaction(async (tx) => {
          await this.orders.insertOrder(tx, order);
          await this.orders.insertIdempotencyKey(tx, idempotencyKey, requestHash, order.id, now);
        });
      } else {
        await this.orders.insertOrder(this.db, order);
      }
    } catch (err) {
      if (idempotencyKey && isViolation(err, PG_UNIQUE_VIOLATION, 'idempotency_keys')) {
        // A key older than 24 hours no longer replays: free it and create anew.
        if (await this.orders.deleteIdempotencyKeyOlderThan(idempotencyKey, idempotencyKeyCutoff())) return this.create(dto, idempotencyKey);
        return this.replay(idempotencyKey, requestHash, dto);
      }
      throw err;
    }
    try {
      const payment = dto.checkout ? await this.recordCheckoutSession(order, dto.checkout) : await this.recordPaymentIntent(order, dto.returnUrl !== undefined);
      return { order: toOrderView(order, payment, []), created: true };
    } catch (err) {
      await this.orders
        .deleteOrderWithoutPayment(order.id)
        .catch((dbErr: Error) => this.logger.error({ msg: 'could not remove an order whose PaymentIntent failed', orderId: order.id, error: dbErr.message }));
      // The key is this new order's own: "still running" means our first try timed out and the PSP is slow, not a client's conflict.
      if (err instanceof DomainError && err.code === ErrorCode.Conflict) {
        throw new DomainError(ErrorCode.PspUnavailable, 'The payment provider did not answer in time while creating the PaymentIntent; retry later');
      }
      throw err;
    }
  }

  /** Steps 2 and 3 of create: the PSP call (same key every time for this order), then the payment row. */
  private async recordPaymentIntent(order: Order, allowRedirects: boolean): Promise<Payment> {
    const intent = await this.psp.createPaymentIntent({
      orderId: order.id,
      amount: order.amount,
      currency: order.currency,
      email: order.customerEmail,
      captureMethod: order.captureMethod,
      allowRedirects,
    });
    const payment: Payment = {
      id: intent.id,
      orderId: order.id,
      status: intent.status,
      clientSecret: intent.client_secret ?? '',
      checkoutSessionId: null,
      checkoutUrl: null,
      amountCapturable: intent.amount_capturable ?? 0,
      amountCaptured: null,
      captureBefore: null,
    };
    await this.insertPayment({ ...payment, amount: intent.amount, amountReceived: intent.amount_received ?? 0, currency: intent.currency });
    return payment;
  }

  /**
   * Steps 2 and 3 of create for hosted checkout: a Checkout Session (same key
   * every time for this order), open until the order's payment timeout (within
   * Stripe's 30 minutes to 24 hours; the expiry sweep expires it sooner when the
   * timeout is shorter), then the payment row, keyed by the session until it
   * creates its PaymentIntent.
   */
  private async recordCheckoutSession(order: Order, checkout: { successUrl: string; cancelUrl: string }): Promise<Payment> {
    const lifetimeMs = Math.min(Math.max(this.config.orderPaymentTimeoutMs, SESSION_MIN_MS), SESSION_MAX_MS);
    const session = await this.psp.createCheckoutSession({
      orderId: order.id,
      currency: order.currency,
      email: order.customerEmail,
      items: order.items,
      captureMethod: order.captureMethod,
      successUrl: checkout.successUrl,
      cancelUrl: checkout.cancelUrl,
      // A minute's margin: Stripe measures the 30 minutes from its own receipt of the request.
      expiresAt: Math.floor((Date.now() + lifetimeMs + (lifetimeMs === SESSION_MIN_MS ? 60_000 : 0)) / 1000),
    });
    const payment: Payment = {
      id: session.id,
      orderId: order.id,
      status: session.status ?? 'open',
      clientSecret: '',
      checkoutSessionId: session.id,
      checkoutUrl: session.url ?? null,
      amountCapturable: 0,
      amountCaptured: null,
      captureBefore: null,
    };
    await this.insertPayment({ ...payment, amount: session.amount_total ?? order.amount, amountReceived: 0, currency: session.currency ?? order.currency });
    return payment;
  }

  private async insertPayment(payment: Payment & { amount: number; amountReceived: number; currency: string }): Promise<void> {
    try {
      await this.orders.insertPayment(payment, new Date());
    } catch (err) {
      // The request that created the order gave up on the PSP and removed it meanwhile.
      if (isViolation(err, PG_FOREIGN_KEY_VIOLATION)) throw new DomainError(ErrorCode.Conflict, 'The order for this Idempotency-Key was abandoned after a PSP failure; retry');
      throw err;
    }
  }

  private async replay(key: string, requestHash: string, dto: CreateOrderDto): Promise<CreateOrderResult> {
    const saved = await this.orders.findIdempotencyKey(key);
    if (!saved) throw new DomainError(ErrorCode.Conflict, 'A request with this Idempotency-Key is still in progress; retry');
    if (saved.requestHash !== requestHash) {
      throw new DomainError(ErrorCode.IdempotencyMismatch, 'This Idempotency-Key was already used with a different request body');
    }
    const found = await this.orders.findWithPayment(saved.orderId);
    if (found) return { order: await this.view(found), created: false };
    // The first request is still at the PSP: ask with the same key, which answers its PaymentIntent (the SDK retries the PSP's 409 while the first call runs).
    const order = await this.orders.findOrder(saved.orderId);
    if (!order) throw new DomainError(ErrorCode.Conflict, 'A request with this Idempotency-Key is still in progress; retry');
    // Same body (same hash), so the same way to pay.
    if (dto.checkout) await this.recordCheckoutSession(order, dto.checkout);
    else await this.recordPaymentIntent(order, dto.returnUrl !== undefined);
    return { order: await this.get(order.id), created: false };
  }

  async get(id: string): Promise<OrderView> {
    return this.view(await this.requireOrder(id));
  }

  private async view(found: OrderWithPayment): Promise<OrderView> {
    const ids = [found.order.id];
    const [history, unexpected, disputes] = await Promise.all([this.orders.historyOf(ids), this.orders.unexpectedOf(ids), this.orders.disputesOf(ids)]);
    return toOrderView(found.order, found.payment, history, unexpected, disputes.at(-1) ?? null);
  }

  /** Newest first (authorized: soonest deadline first); the cursor is the sort key and id of the last order of the previous page. */
  async list(query: ListOrdersQuery): Promise<{ data: OrderView[]; nextCursor: string | null }> {
    const limit = query.limit ?? 20;
    const rows = await this.orders.listPage({ status: query.status, after: query.cursor ? decodeCursor(query.cursor) : undefined, limit: limit + 1 });
    const page = rows.slice(0, limit);
    const ids = page.map((r) => r.order.id);
    const [history, unexpected, disputes] = await Promise.all([this.orders.historyOf(ids), this.orders.unexpectedOf(ids), this.orders.disputesOf(ids)]);
    const data = page.map((r) =>
      toOrderView(
        r.order,
        r.payment,
        history.filter((h) => h.orderId === r.order.id),
        unexpected.filter((u) => u.orderId === r.order.id),
        disputes.filter((d) => d.orderId === r.order.id).at(-1) ?? null,
      ),
    );
    const last = page[page.length - 1];
    return { data, nextCursor: rows.length > limit && last ? encodeCursor(this.orders.pageKey(query.status, last), last.order.id) : null };
  }

  /**
   * Cancels an unpaid order, or voids an authorized one (its hold is
   * released): the PaymentIntent first (no lock held), then the order, with
   * the PSP's answer as the cause.
   */
  async cancel(id: string): Promise<OrderView> {
    const { order, payment } = await this.requireOrder(id);
    if (order.status === 'canceled') return this.get(id);
    if (!UNPAID_STATUSES.includes(order.status) && order.status !== 'authorized') {
      throw new DomainError(ErrorCode.Conflict, `Order ${id} is ${order.status}; only unpaid or authorized orders can be canceled`);
    }
    if (payment.checkoutSessionId && payment.id === payment.checkoutSessionId) return this.cancelSession(id, payment.checkoutSessionId);
    if (payment.status !== 'canceled') {
      const intent = await this.psp.cancelPaymentIntent(payment.id, id).catch(async (err) => {
        // The PSP refuses to cancel a PaymentIntent that already took (or is taking) the money,
        // even when its webhook has not reached us yet: that is the caller's conflict, not a PSP failure.
        if (!(err instanceof DomainError) || err.code !== ErrorCode.PspRejected) throw err;
        const current = await this.psp.retrievePaymentIntent(payment.id);
        if (current.status === 'succeeded' || current.status === 'processing') {
          await this.applyIntent(id, current, 'PSP state on cancel');
          throw new DomainError(ErrorCode.Conflict, `Order ${id} is already paid (or being paid) at the PSP; refund it instead`);
        }
        throw err;
      });
      const voided = order.status === 'authorized';
      await this.transitions.run(async (uow) => {
        const held = await uow.lockByOrder(id);
        if (!held || held.intentId !== intent.id) return;
        uow.setPaymentStatus(held, intent.status);
        uow.setCaptureFigures(held, captureOfIntent(intent));
        // A webhook may have moved it meanwhile; the machine decides, and a paid order stays paid.
        uow.transition(held, 'canceled', voided ? 'authorization voided by admin' : 'canceled by admin', null);
      });
    }
    return this.get(id);
  }

  /** Cancels an order whose Checkout Session has no PaymentIntent yet: the session is expired at the PSP, then the order canceled. */
  private async cancelSession(id: string, sessionId: string): Promise<OrderView> {
    const session = await this.psp.expireCheckoutSession(sessionId, id).catch(async (err) => {
      if (!(err instanceof DomainError) || err.code !== ErrorCode.PspRejected) throw err;
      return this.psp.retrieveCheckoutSession(sessionId);
    });
    if (session.status !== 'expired') {
      // Completed meanwhile: the customer paid (or is paying); the webhooks and the reconciler bring its outcome.
      throw new DomainError(ErrorCode.Conflict, `Order ${id} was paid (or is being paid) on its Checkout Session; refund it instead`);
    }
    await this.transitions.run(async (uow) => {
      const held = await uow.lockByOrder(id);
      if (!held || held.checkoutSessionId !== sessionId) return;
      uow.setPaymentStatus(held, 'expired');
      uow.transition(held, 'canceled', 'canceled by admin: Checkout Session expired', null);
    });
    return this.get(id);
  }

  /**
   * Captures an authorized order, all of what is held or `amount`: the PSP
   * first (no lock held, a key derived from the order and amount), then its
   * answer (the PaymentIntent succeeded) through the transition writer. A PSP
   * that says the intent was captured already (at the PSP, or by a retry of
   * this request) counts as success.
   */
  async capture(id: string, amount?: number): Promise<OrderView> {
    const { order, payment } = await this.requireOrder(id);
    if (order.status !== 'authorized') {
      throw new DomainError(ErrorCode.Conflict, `Order ${id} is ${order.status}; only authorized orders can be captured`);
    }
    if (amount !== undefined && amount > payment.amountCapturable) {
      throw new DomainError(ErrorCode.Validation, `amount ${amount} is more than the ${payment.amountCapturable} that is capturable`);
    }
    let intent: Stripe.PaymentIntent;
    try {
      intent = await this.psp.capturePaymentIntent(payment.id, id, amount);
    } catch (err) {
      if (!(err instanceof DomainError) || err.code !== ErrorCode.PspRejected) throw err;
      const current = await this.psp.retrievePaymentIntent(payment.id);
      if (current.status !== 'succeeded') {
        await this.applyIntent(id, current, 'PSP state on capture');
        throw new DomainError(ErrorCode.Conflict, `Order ${id} cannot be captured: its PaymentIntent is ${current.status} at the PSP (${err.message})`);
      }
      intent = current;
    }
    await this.applyIntent(id, intent, 'captured by admin');
    return this.get(id);
  }

  /**
   * Expires an unpaid order's open Checkout Session, then the order. A session
   * that completed meanwhile (the PSP refuses to expire it) is applied as it is:
   * its PaymentIntent attached to the order and decided by the machine.
   */
  private async expireSession(orderId: string, sessionId: string): Promise<boolean> {
    const session = await this.psp.expireCheckoutSession(sessionId, orderId).catch(async (err) => {
      if (!(err instanceof DomainError) || err.code !== ErrorCode.PspRejected) throw err;
      return this.psp.retrieveCheckoutSession(sessionId);
    });
    const intent = typeof session.payment_intent === 'object' && session.payment_intent ? session.payment_intent : null;
    return this.transitions.run(async (uow) => {
      const held = await uow.lockByOrder(orderId);
      if (!held || held.checkoutSessionId !== sessionId) return false;
      if (session.status === 'expired' && EXPIRABLE_STATUSES.includes(held.held.orderStatus)) {
        uow.setPaymentStatus(held, 'expired');
        return uow.transition(held, 'expired', `unpaid after ${this.config.orderPaymentTimeoutMs / 60000} minutes: Checkout Session expired`, null);
      }
      if (intent) {
        await uow.attachIntent(held, intent.id);
        applyRetrieved(uow, held, intent, 'PSP state on expiry');
      }
      return false;
    });
  }

  /** Submits evidence for the order's open dispute; the PSP's answer (under review) is applied, its outcome comes by webhook. */
  async submitDisputeEvidence(id: string, text: string): Promise<OrderView> {
    const dispute = await this.requireOpenDispute(id);
    await this.applyDispute(id, await this.psp.submitDisputeEvidence(dispute.id, id, text), 'evidence submitted by admin');
    return this.get(id);
  }

  /** Accepts the order's open dispute: the PSP closes it as lost, and the order follows. */
  async acceptDispute(id: string): Promise<OrderView> {
    const dispute = await this.requireOpenDispute(id);
    await this.applyDispute(id, await this.psp.closeDispute(dispute.id, id), 'dispute accepted by admin');
    return this.get(id);
  }

  private async requireOpenDispute(id: string): Promise<DisputeRecord> {
    await this.requireOrder(id);
    const dispute = (await this.orders.disputesOf([id])).at(-1);
    if (!dispute || !OPEN_DISPUTE_STATUSES.includes(dispute.status)) {
      throw new DomainError(ErrorCode.Conflict, dispute ? `Order ${id}'s dispute ${dispute.id} is ${dispute.status}; it can no longer be answered` : `Order ${id} has no open dispute`);
    }
    return dispute;
  }

  private async applyDispute(orderId: string, dispute: Stripe.Dispute, cause: string): Promise<void> {
    await this.transitions.run(async (uow) => {
      const held = await uow.lockByOrder(orderId);
      if (!held) return;
      const decision = decide(held.held, factFromDispute(dispute, held.held.lastEventCreated, true));
      uow.applyDecision(held, decision, `${cause}: ${decision.reason}`, null);
    });
  }

  /**
   * The PaymentIntent as the PSP just answered it (the current truth), applied
   * to the order by the pure machine through the transition writer.
   */
  private async applyIntent(orderId: string, intent: Stripe.PaymentIntent, cause: string): Promise<void> {
    await this.transitions.run(async (uow) => {
      const held = await uow.lockByOrder(orderId);
      if (!held || held.intentId !== intent.id) return;
      applyRetrieved(uow, held, intent, cause);
    });
  }

  /**
   * Expires orders unpaid for ORDER_PAYMENT_TIMEOUT_MINUTES, at most `limit`
   * of them: each PaymentIntent is canceled at the PSP (reason abandoned, no
   * lock held), then the order becomes expired through the writer. A
   * PaymentIntent that can no longer be canceled (paid, or being paid) wins
   * the race: its state is applied instead. Returns how many expired.
   */
  async expireUnpaid(limit = 100): Promise<number> {
    const due = await this.orders.findUnpaidCreatedBefore(new Date(Date.now() - this.config.orderPaymentTimeoutMs), limit);
    let expired = 0;
    for (const { orderId, paymentIntentId } of due) {
      try {
        if (paymentIntentId.startsWith('cs_')) {
          if (await this.expireSession(orderId, paymentIntentId)) expired++;
          continue;
        }
        const intent = await this.psp.cancelPaymentIntent(paymentIntentId, orderId, 'abandoned').catch(async (err) => {
          if (!(err instanceof DomainError) || err.code !== ErrorCode.PspRejected) throw err;
          return this.psp.retrievePaymentIntent(paymentIntentId);
        });
        await this.transitions.run(async (uow) => {
          const held = await uow.lockByOrder(orderId);
          if (!held || held.intentId !== intent.id) return;
          // Only an order still unpaid: an event may have paid it meanwhile, and then the PSP's answer is applied as it is.
          if (intent.status === 'canceled' && EXPIRABLE_STATUSES.includes(held.held.orderStatus)) {
            uow.setPaymentStatus(held, intent.status);
            if (uow.transition(held, 'expired', `unpaid after ${this.config.orderPaymentTimeoutMs / 60000} minutes: PaymentIntent canceled`, null)) expired++;
          } else {
            applyRetrieved(uow, held, intent, 'PSP state on expiry');
          }
        });
      } catch (err) {
        // The next pass tries again; one order's PSP failure does not stop the others.
        this.logger.warn({ msg: 'could not expire an unpaid order', orderId, error: (err as Error).message });
      }
    }
    return expired;
  }

  /** Asks the PSP for a refund; the order's status follows when the PSP confirms it (webhook or reconciler). */
  async refund(id: string, requested?: number): Promise<{ refund: { id: string; amount: number; status: string }; order: OrderView }> {
    const { order, payment } = await this.requireOrder(id);
    if (!REFUNDABLE_STATUSES.includes(order.status)) {
      throw new DomainError(ErrorCode.Conflict, `Order ${id} is ${order.status}; only paid orders can be refunded`);
    }
    const refunds = await this.orders.refundsOf(id);
    // Count pending refunds too, so two quick requests cannot over-refund between PSP confirmations.
    const committed = refunds.filter((r) => !['failed', 'canceled'].includes(r.status)).reduce((s, r) => s + r.amount, 0);
    // After a partial capture only the captured sum can go back.
    const remaining = (payment.amountCaptured ?? order.amount) - Math.max(order.amountRefunded, committed);
    if (remaining <= 0) throw new DomainError(ErrorCode.Conflict, `Order ${id} has nothing left to refund`);
    const amount = requested ?? remaining;
    if (amount > remaining) {
      throw new DomainError(ErrorCode.Conflict, `Order ${id} has only ${remaining} left to refund, ${amount} was asked`);
    }
    const answer = await this.psp.createRefund({ orderId: id, paymentIntentId: payment.id, amount, sequence: refunds.length + 1 });
    const refund = { id: answer.id, amount: answer.amount, status: answer.status ?? 'pending' };
    await this.orders.insertRefund(id, payment.id, refund);
    return { refund, order: await this.get(id) };
  }

  private async requireOrder(id: string): Promise<OrderWithPayment> {
    const found = isOrderId(id) ? await this.orders.findWithPayment(id) : null;
    if (!found) throw new DomainError(ErrorCode.NotFound, `Order ${id} not found`);
    return found;
  }
}

/** A PostgreSQL error of this SQLSTATE, and (when given) on a constraint of this table. */
function isViolation(err: unknown, code: string, table?: string): boolean {
  return (err as { code?: string }).code === code && (table === undefined || String((err as Error).message).includes(table));
}


/** Key order and whitespace do not matter: the same order body always hashes the same. */
function hashRequest(dto: CreateOrderDto): string {
  const canonical = JSON.stringify({
    currency: dto.currency,
    customerEmail: dto.customerEmail,
    items: dto.items.map((i) => [i.sku, i.name, i.unitAmount, i.quantity]),
    // Only when given, so keys stored before the field existed still replay.
    ...(dto.captureMethod !== undefined ? { captureMethod: dto.captureMethod } : {}),
    ...(dto.checkout !== undefined ? { checkout: [dto.checkout.successUrl, dto.checkout.cancelUrl] } : {}),
    ...(dto.returnUrl !== undefined ? { returnUrl: dto.returnUrl } : {}),
  });
  return createHash('sha256').update(canonical).digest('hex');
}

/** The PaymentIntent as the PSP answered it, decided by the pure machine and applied by the writer. */
function applyRetrieved(uow: OrderUnitOfWork, held: HeldOrder, intent: Stripe.PaymentIntent, cause: string): void {
  const decision = decide(held.held, factFromIntent(intent, held.held.lastEventCreated));
  if (decision.unexpectedPayment) uow.addUnexpectedPayment(held, { id: intent.id, amount: intent.amount, currency: intent.currency, status: intent.status });
  uow.applyDecision(held, decision, `${cause}: ${decision.reason}`, null);
}

function encodeCursor(at: Date, id: string): string {
  return Buffer.from(`${at.toISOString()}|${id}`).toString('base64url');
}

function decodeCursor(cursor: string): { at: Date; id: string } {
  const [iso, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(iso ?? '');
  // Only what encodeCursor writes: a Date can hold year -271821, PostgreSQL cannot (a 500).
  if (!id || !isOrderId(id) || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(iso ?? '') || Number.isNaN(createdAt.getTime())) {
    throw new DomainError(ErrorCode.Validation, 'cursor is not valid; pass the nextCursor of a previous page');
  }
  return { at: createdAt, id };
}
