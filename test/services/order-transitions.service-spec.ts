import type Stripe from 'stripe';
import { DomainError, ErrorCode } from '../../src/common/errors/domain-error';
import { Metrics } from '../../src/metrics/metrics';
import { OPEN_INTENT_STATUSES } from '../../src/orders/order.repository';
import { OrdersService } from '../../src/orders/orders.service';
import { ReconcilerService } from '../../src/reconciliation/reconciler.service';
import { PaymentApplier } from '../../src/webhooks/payment-applier';
import { WebhookInbox } from '../../src/webhooks/webhook-inbox.service';
import { openTransactions, ServiceTier, startServiceTier } from '../support/service-tier';

/**
 * The transition writer, the applier and the reconciler on real PostgreSQL,
 * with the PSP client faked per test: behaviour without the mock's HTTP.
 */
describe('Order transitions on real PostgreSQL with a fake PSP', () => {
  let tier: ServiceTier;
  let orders: OrdersService;
  let applier: PaymentApplier;
  let inbox: WebhookInbox;
  let metrics: Metrics;
  let seq = 0;

  beforeAll(async () => {
    tier = await startServiceTier();
    orders = tier.app.get(OrdersService);
    applier = tier.app.get(PaymentApplier);
    inbox = tier.app.get(WebhookInbox);
    metrics = tier.app.get(Metrics);
  });
  afterAll(async () => tier?.stop());
  beforeEach(() => {
    tier.psp.onCall = async () => undefined;
    tier.psp.calls.length = 0;
  });

  const newOrder = async () => {
    const { order } = await orders.create({ currency: 'usd', items: [{ sku: 'A', name: 'A', unitAmount: 1000, quantity: 1 }], customerEmail: 'a@example.com' });
    tier.psp.calls.length = 0;
    return { orderId: order.id, intentId: (order.payment as { id: string }).id };
  };

  /** Stores a payment_intent.* event as the webhook route would; returns its id. */
  const storeIntentEvent = async (o: { orderId: string; intentId: string }, type: string, status: string, created: number, extra: Partial<Stripe.PaymentIntent> = {}) => {
    const id = `evt_svc_${++seq}`;
    const object = { id: o.intentId, object: 'payment_intent', status, amount: 1000, currency: 'usd', metadata: { order_id: o.orderId }, last_payment_error: null, ...extra };
    await inbox.storeMany([{ id, type, created, payload: JSON.stringify({ id, object: 'event', type, created, data: { object } }) }], 'webhook');
    return id;
  };

  const history = async (orderId: string) =>
    (await tier.db.query(`SELECT from_status, to_status, event_id FROM order_status_history WHERE order_id = $1 ORDER BY id`, [orderId])).rows;
  const statusOf = async (orderId: string) => (await tier.db.query(`SELECT status FROM orders WHERE id = $1`, [orderId])).rows[0].status;
  const counted = async (from: string, to: string) =>
    (await metrics.orderTransitions.get()).values.filter((v) => v.labels.from === from && v.labels.to === to).reduce((s, v) => s + v.value, 0);

  it('applies events that arrive out of order: a success first, then an older requires_action is stale', async () => {
    const o = await newOrder();
    const t = Math.floor(Date.now() / 1000);
    const before = await counted('pending_payment', 'paid');
    const success = await storeIntentEvent(o, 'payment_intent.succeeded', 'succeeded', t + 5);
    const older = await storeIntentEvent(o, 'payment_intent.requires_action', 'requires_action', t);
    expect((await applier.applyEvents([success])).get(success)).toBe('applied');
    expect((await applier.applyEvents([older])).get(older)).toBe('stale');
    expect(await statusOf(o.orderId)).toBe('paid');
    expect(await history(o.orderId)).toEqual([{ from_status: 'pending_payment', to_status: 'paid', event_id: success }]);
    expect(await counted('pending_payment', 'paid')).toBe(before + 1);
  });

  it('orders one batch by created, whatever the arrival order', async () => {
    const o = await newOrder();
    const t = Math.floor(Date.now() / 1000);
    const success = await storeIntentEvent(o, 'payment_intent.succeeded', 'succeeded', t + 5);
    const action = await storeIntentEvent(o, 'payment_intent.requires_action', 'requires_action', t);
    const results = await applier.applyEvents([success, action]);
    expect([results.get(action), results.get(success)]).toEqual(['applied', 'applied']);
    expect((await history(o.orderId)).map((h) => h.to_status)).toEqual(['requires_action', 'paid']);
  });

  it('asks the PSP about a same-second event between transactions, never inside one', async () => {
    const o = await newOrder();
    const t = Math.floor(Date.now() / 1000);
    const failed = await storeIntentEvent(o, 'payment_intent.payment_failed', 'requires_payment_method', t, {
      last_payment_error: { type: 'card_error' } as Stripe.PaymentIntent.LastPaymentError,
    });
    expect((await applier.applyEvents([failed])).get(failed)).toBe('applied');
    // Same second as the failure, and not progress: only the PaymentIntent's current state can order them.
    const action = await storeIntentEvent(o, 'payment_intent.requires_action', 'requires_action', t);
    tier.psp.setIntent(o.intentId, { status: 'requires_action' });
    const seenOpen: number[] = [];
    tier.psp.onCall = async () => void seenOpen.push(await openTransactions(tier.db));
    expect((await applier.applyEvents([action])).get(action)).toBe('applied');
    expect(tier.psp.calls).toEqual(['retrieve_payment_intent']);
    expect(seenOpen).toEqual([0]);
    expect(await statusOf(o.orderId)).toBe('requires_action');
  });

  it('counts transitions after the commit: a failed batch counts nothing, the event applied again alone counts once', async () => {
    const o = await newOrder();
    const good = await storeIntentEvent(o, 'payment_intent.succeeded', 'succeeded', Math.floor(Date.now() / 1000));
    const broken = `evt_svc_${++seq}`;
    await inbox.storeMany([{ id: broken, type: 'payment_intent.succeeded', created: 1, payload: '{not json' }], 'webhook');
    const before = await counted('pending_payment', 'paid');
    await expect(applier.applyEvents([good, broken])).rejects.toThrow();
    expect(await counted('pending_payment', 'paid')).toBe(before);
    expect(await statusOf(o.orderId)).toBe('pending_payment');
    expect((await applier.applyEvents([good])).get(good)).toBe('applied');
    expect(await counted('pending_payment', 'paid')).toBe(before + 1);
    expect(await history(o.orderId)).toHaveLength(1);
  });

  it('reconciles a stale payment: retrieves it with no transaction open, then applies it in its own', async () => {
    const o = await newOrder();
    await tier.db.query(`UPDATE payments SET checked_at = now() - interval '1 hour' WHERE id = $1`, [o.intentId]);
    tier.psp.setIntent(o.intentId, { status: 'succeeded' });
    const seenOpen: number[] = [];
    tier.psp.onCall = async () => void seenOpen.push(await openTransactions(tier.db));
    const pass = await tier.app.get(ReconcilerService).runOnce();
    expect(pass).toMatchObject({ result: 'ok', paymentsFixed: 1 });
    expect(tier.psp.calls).toEqual(['list_events', 'retrieve_payment_intent']);
    expect(seenOpen).toEqual([0, 0]);
    expect(await statusOf(o.orderId)).toBe('paid');
    const [entry] = await history(o.orderId);
    expect(entry).toEqual({ from_status: 'pending_payment', to_status: 'paid', event_id: expect.stringMatching(/^rec_/) });
    const record = (await tier.db.query(`SELECT source, status FROM webhook_events WHERE id = $1`, [entry.event_id])).rows[0];
    expect(record).toEqual({ source: 'reconciler', status: 'processed' });
  });

  it('keeps a paid order paid when a success is applied while cancel waits on the PSP', async () => {
    const o = await newOrder();
    const success = await storeIntentEvent(o, 'payment_intent.succeeded', 'succeeded', Math.floor(Date.now() / 1000));
    // The success is applied during the PSP call: it could not be if cancel held the order's lock.
    tier.psp.onCall = async (operation) => {
      if (operation === 'cancel_payment_intent') await applier.applyEvents([success]);
    };
    const view = await orders.cancel(o.orderId);
    expect(view.status).toBe('paid');
    expect(await history(o.orderId)).toEqual([{ from_status: 'pending_payment', to_status: 'paid', event_id: success }]);
  });

  it('leaves nothing behind when the PSP fails after the order was committed, and a retry with the same Idempotency-Key creates it', async () => {
    const count = async (table: string) => (await tier.db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n as number;
    const [ordersBefore, keysBefore] = [await count('orders'), await count('idempotency_keys')];
    const body = { currency: 'usd', items: [{ sku: 'B', name: 'B', unitAmount: 500, quantity: 2 }], customerEmail: 'b@example.com' };
    const seenOpen: number[] = [];
    tier.psp.onCall = async () => {
      seenOpen.push(await openTransactions(tier.db));
      // The order and its key are committed before the PSP is asked.
      expect(await count('idempotency_keys')).toBe(keysBefore + 1);
      throw new DomainError(ErrorCode.PspUnavailable, 'The payment provider is unavailable while creating the PaymentIntent; retry later');
    };
    await expect(orders.create(body, 'svc-retry-key')).rejects.toMatchObject({ code: ErrorCode.PspUnavailable });
    expect(seenOpen).toEqual([0]);
    expect([await count('orders'), await count('idempotency_keys')]).toEqual([ordersBefore, keysBefore]);

    tier.psp.onCall = async () => undefined;
    const retried = await orders.create(body, 'svc-retry-key');
    expect(retried).toMatchObject({ created: true, order: { status: 'pending_payment', payment: { id: expect.stringMatching(/^pi_fake_/) } } });
    expect((await orders.create(body, 'svc-retry-key')).order.id).toBe(retried.order.id);
    expect(await count('orders')).toBe(ordersBefore + 1);
  });

  it('scans the same open statuses as the partial index payments_open_checked_idx covers', async () => {
    const { rows } = await tier.db.query(`SELECT indexdef FROM pg_indexes WHERE indexname = 'payments_open_checked_idx'`);
    const indexed = [...String(rows[0].indexdef).matchAll(/'(\w+)'::text/g)].map((m) => m[1]);
    expect(indexed.sort()).toEqual([...OPEN_INTENT_STATUSES].sort());
  });
});
