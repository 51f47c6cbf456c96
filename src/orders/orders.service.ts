import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { createHash, randomUUID } from 'node:crypto';
import { DataSource, In } from 'typeorm';
import { DomainError, ErrorCode } from '../common/errors/domain-error';
import { Payment } from '../payments/payment.entity';
import { Refund } from '../payments/refund.entity';
import { StripeClient } from '../payments/psp/stripe.client';
import { CreateOrderDto } from './dto/create-order.dto';
import { ListOrdersQuery } from './dto/list-orders.query';
import { OrderView, toOrderView } from './dto/order.view';
import { IdempotencyKey } from './idempotency-key.entity';
import { Order } from './order.entity';
import { OrderHistoryEntry } from './order-history.entity';
import { INITIAL_STATUS, REFUNDABLE_STATUSES, UNPAID_STATUSES } from './order-status';
import { lockOrder, transitionOrder } from './order-transitions';
import { OrderEventsOutbox } from '../order-events/order-events.outbox'; // outbox hook

/** Stripe's largest amount for a single charge, in minor units. */
const MAX_ORDER_AMOUNT = 99_999_999;
const PG_UNIQUE_VIOLATION = '23505';

export interface CreateOrderResult {
  order: OrderView;
  /** false when an Idempotency-Key replay returned an order created earlier. */
  created: boolean;
}

@Injectable()
export class OrdersService {
  private readonly logger = new Logger(OrdersService.name);

  constructor(@InjectDataSource() private readonly db: DataSource, private readonly psp: StripeClient, private readonly outbox: OrderEventsOutbox) {} // outbox hook

  /**
   * Creates the order and its PaymentIntent in one transaction that spans the
   * PSP call: if the PSP fails, nothing is left behind, and a concurrent
   * request with the same Idempotency-Key waits on the key's unique index
   * until this one commits (then replays it) or rolls back (then creates).
   */
  async create(dto: CreateOrderDto, idempotencyKey?: string): Promise<CreateOrderResult> {
    const amount = dto.items.reduce((sum, item) => sum + item.unitAmount * item.quantity, 0);
    if (amount <= 0) throw new DomainError(ErrorCode.Validation, 'items must add up to an amount greater than 0');
    if (amount > MAX_ORDER_AMOUNT) {
      throw new DomainError(ErrorCode.Validation, `items add up to ${amount}, more than the largest payable amount ${MAX_ORDER_AMOUNT}`);
    }
    const requestHash = idempotencyKey ? hashRequest(dto) : '';
    try {
      return await this.db.transaction(async (manager) => {
        const now = new Date();
        const order = manager.create(Order, {
          id: randomUUID(),
          status: INITIAL_STATUS,
          amount,
          currency: dto.currency,
          items: dto.items.map(({ sku, name, unitAmount, quantity }) => ({ sku, name, unitAmount, quantity })),
          customerEmail: dto.customerEmail,
          amountRefunded: 0,
          createdAt: now,
          updatedAt: now,
        });
        await manager.insert(Order, order);
        if (idempotencyKey) {
          // Blocks while another transaction holds the same key uncommitted.
          await manager.insert(IdempotencyKey, { key: idempotencyKey, requestHash, orderId: order.id, createdAt: now });
        }
        const intent = await this.psp.createPaymentIntent({ orderId: order.id, amount, currency: order.currency, email: order.customerEmail });
        const payment = manager.create(Payment, {
          id: intent.id,
          orderId: order.id,
          status: intent.status,
          amount: intent.amount,
          amountReceived: intent.amount_received ?? 0,
          currency: intent.currency,
          clientSecret: intent.client_secret ?? '',
          lastEventCreated: 0,
          lastEventId: null,
          disputeId: null,
          createdAt: now,
          checkedAt: now,
        });
        await manager.insert(Payment, payment);
        return { order: toOrderView(order, payment, []), created: true };
      });
    } catch (err) {
      if (idempotencyKey && (err as { code?: string }).code === PG_UNIQUE_VIOLATION && String((err as Error).message).includes('idempotency_keys')) {
        return this.replay(idempotencyKey, requestHash);
      }
      throw err;
    }
  }

  private async replay(key: string, requestHash: string): Promise<CreateOrderResult> {
    const saved = await this.db.getRepository(IdempotencyKey).findOneBy({ key });
    if (!saved) throw new DomainError(ErrorCode.Conflict, 'A request with this Idempotency-Key is still in progress; retry');
    if (saved.requestHash !== requestHash) {
      throw new DomainError(ErrorCode.IdempotencyMismatch, 'This Idempotency-Key was already used with a different request body');
    }
    return { order: await this.get(saved.orderId), created: false };
  }

  async get(id: string): Promise<OrderView> {
    if (!isUuid(id)) throw new DomainError(ErrorCode.NotFound, `Order ${id} not found`);
    const order = await this.db.getRepository(Order).findOneBy({ id });
    if (!order) throw new DomainError(ErrorCode.NotFound, `Order ${id} not found`);
    const [payment, history] = await Promise.all([
      this.db.getRepository(Payment).findOneBy({ orderId: id }),
      this.db.getRepository(OrderHistoryEntry).find({ where: { orderId: id }, order: { id: 'ASC' } }),
    ]);
    return toOrderView(order, payment, history);
  }

  /** Newest first; the cursor is the (createdAt, id) of the last order of the previous page. */
  async list(query: ListOrdersQuery): Promise<{ data: OrderView[]; nextCursor: string | null }> {
    const limit = query.limit ?? 20;
    const qb = this.db.getRepository(Order).createQueryBuilder('o').orderBy('o.created_at', 'DESC').addOrderBy('o.id', 'DESC').limit(limit + 1);
    if (query.status) qb.andWhere('o.status = :status', { status: query.status });
    if (query.cursor) {
      const { createdAt, id } = decodeCursor(query.cursor);
      qb.andWhere('(o.created_at, o.id) < (:createdAt, :id)', { createdAt, id });
    }
    const rows = await qb.getMany();
    const page = rows.slice(0, limit);
    const ids = page.map((o) => o.id);
    const [payments, history] = ids.length
      ? await Promise.all([
          this.db.getRepository(Payment).findBy({ orderId: In(ids) }),
          this.db.getRepository(OrderHistoryEntry).find({ where: { orderId: In(ids) }, order: { id: 'ASC' } }),
        ])
      : [[], []];
    const data = page.map((o) =>
      toOrderView(o, payments.find((p) => p.orderId === o.id) ?? null, history.filter((h) => h.orderId === o.id)),
    );
    const last = page[page.length - 1];
    return { data, nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
  }

  /** Cancels an unpaid order: the PaymentIntent first, then the order, with the PSP's answer as the cause. */
  async cancel(id: string): Promise<OrderView> {
    const order = await this.requireOrder(id);
    const payment = await this.db.getRepository(Payment).findOneBy({ orderId: id });
    if (order.status === 'canceled') return this.get(id);
    if (!UNPAID_STATUSES.includes(order.status)) {
      throw new DomainError(ErrorCode.Conflict, `Order ${id} is ${order.status}; only unpaid orders can be canceled`);
    }
    if (payment && payment.status !== 'canceled') {
      const intent = await this.psp.cancelPaymentIntent(payment.id, id).catch(async (err) => {
        // The PSP refuses to cancel a PaymentIntent that already took (or is taking) the money,
        // even when its webhook has not reached us yet: that is the caller's conflict, not a PSP failure.
        if (!(err instanceof DomainError) || err.code !== ErrorCode.PspRejected) throw err;
        const current = await this.psp.retrievePaymentIntent(payment.id);
        if (current.status === 'succeeded' || current.status === 'processing') {
          throw new DomainError(ErrorCode.Conflict, `Order ${id} is already paid (or being paid) at the PSP; refund it instead`);
        }
        throw err;
      });
      await this.db.transaction(async (manager) => {
        const locked = await lockOrder(manager, id);
        if (!locked) return;
        await manager.update(Payment, { id: payment.id }, { status: intent.status, checkedAt: new Date() });
        // A webhook may have moved it meanwhile; the machine decides, and a paid order stays paid.
        await transitionOrder(this.outbox, manager, locked, 'canceled', 'canceled by admin', null); // outbox hook
      });
    }
    return this.get(id);
  }

  /** Asks the PSP for a refund; the order's status follows when the PSP confirms it (webhook or reconciler). */
  async refund(id: string, requested?: number): Promise<{ refund: { id: string; amount: number; status: string }; order: OrderView }> {
    const order = await this.requireOrder(id);
    if (!REFUNDABLE_STATUSES.includes(order.status)) {
      throw new DomainError(ErrorCode.Conflict, `Order ${id} is ${order.status}; only paid orders can be refunded`);
    }
    const payment = await this.db.getRepository(Payment).findOneBy({ orderId: id });
    const refunds = await this.db.getRepository(Refund).findBy({ orderId: id });
    // Count pending refunds too, so two quick requests cannot over-refund between PSP confirmations.
    const committed = refunds.filter((r) => !['failed', 'canceled'].includes(r.status)).reduce((s, r) => s + r.amount, 0);
    const remaining = order.amount - Math.max(order.amountRefunded, committed);
    if (!payment || remaining <= 0) throw new DomainError(ErrorCode.Conflict, `Order ${id} has nothing left to refund`);
    const amount = requested ?? remaining;
    if (amount > remaining) {
      throw new DomainError(ErrorCode.Conflict, `Order ${id} has only ${remaining} left to refund, ${amount} was asked`);
    }
    const refund = await this.psp.createRefund({ orderId: id, paymentIntentId: payment.id, amount, sequence: refunds.length + 1 });
    const now = new Date();
    await this.db
      .createQueryBuilder()
      .insert()
      .into(Refund)
      .values({ id: refund.id, orderId: id, paymentIntentId: payment.id, amount: refund.amount, status: refund.status ?? 'pending', createdAt: now, updatedAt: now })
      .orIgnore()
      .execute();
    return { refund: { id: refund.id, amount: refund.amount, status: refund.status ?? 'pending' }, order: await this.get(id) };
  }

  private async requireOrder(id: string): Promise<Order> {
    const order = isUuid(id) ? await this.db.getRepository(Order).findOneBy({ id }) : null;
    if (!order) throw new DomainError(ErrorCode.NotFound, `Order ${id} not found`);
    return order;
  }
}

function isUuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
}

/** Key order and whitespace do not matter: the same order body always hashes the same. */
function hashRequest(dto: CreateOrderDto): string {
  const canonical = JSON.stringify({
    currency: dto.currency,
    customerEmail: dto.customerEmail,
    items: dto.items.map((i) => [i.sku, i.name, i.unitAmount, i.quantity]),
  });
  return createHash('sha256').update(canonical).digest('hex');
}

function encodeCursor(order: Order): string {
  return Buffer.from(`${order.createdAt.toISOString()}|${order.id}`).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  const [iso, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(iso ?? '');
  if (!id || !isUuid(id) || Number.isNaN(createdAt.getTime())) {
    throw new DomainError(ErrorCode.Validation, 'cursor is not valid; pass the nextCursor of a previous page');
  }
  return { createdAt, id };
}
