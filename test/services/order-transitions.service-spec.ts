import type Stripe from 'stripe';
import { DomainError, ErrorCode } from '../../src/common/errors/domain-error';
import { Metrics } from '../../src/metrics/metrics';
import { IN_FLIGHT_PAYMENT_STATUSES } from '../../src/orders/order.repository';
import { EXPIRABLE_STATUSES } from '../../src/orders/order-status';
import { OrdersService } from '../../src/orders/orders.service';
import { ReconcilerService } from '../../src/reconciliation/reconciler.service';
import { PaymentApplier } from '../../src/webhooks/payment-applier';
import { TransactionTurn } from '../../src/webhooks/transaction-turn';
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

  /** A failure applied, then a requires_action of the same second, stored: only the PaymentIntent's current state (asked of the PSP) can order them. */
  const sameSecondAsFailure = async () => {
    const o = await newOrder();
    const t = Math.floor(Date.now() / 1000);
    const failed = await storeIntentEvent(o, 'payment_intent.payment_failed', 'requires_payment_method', t, {
      last_payment_error: { type: 'card_error' } as Stripe.PaymentIntent.LastPaymentError,
    });
    expect((await applier.applyEvents([failed])).get(failed)).toBe('applied');
    const action = await storeIntentEvent(o, 'payment_intent.requires_action', 'requires_action', t);
    tier.psp.setIntent(o.intentId, { status: 'requires_action' });
    return { o, action };
  };

  it('asks the PSP about a same-second event between transactions, never inside one', async () => {
    const { o, action } = await sameSecondAsFailure();
    const seenOpen: number[] = [];
    tier.psp.onCall = async () => void seenOpen.push(await openTransactions(tier.db));
    expect((await applier.applyEvents([action])).get(action)).toBe('applied');
    expect(tier.psp.calls).toEqual(['retrieve_payment_intent']);
    expect(seenOpen).toEqual([0]);
    expect(await statusOf(o.orderId)).toBe('requires_action');
  });

  it("asks the PSP outside the processor's turn: another transaction takes the turn while the PSP answers", async () => {
    const { o, action } = await sameSecondAsFailure();
    const turn = new TransactionTurn();
    let tookTurn = false;
    // Held by the batch during the call, the turn would never come: the race gives up after 2 s.
    tier.psp.onCall = async () => {
      await Promise.race([turn.run(async () => void (tookTurn = true)), new Promise((resolve) => setTimeout(resolve, 2000))]);
    };
    expect((await applier.applyEvents([action], turn)).get(action)).toBe('applied');
    expect(tier.psp.calls).toEqual(['retrieve_payment_intent']);
    expect(tookTurn).toBe(true);
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

  it('reconciles a stale payment in flight (retrieved with no transaction open, applied in its own) and leaves one waiting on the customer alone', async () => {
    const o = await newOrder();
    const waiting = await newOrder();
    // Settle last saw it processing (a bank debit); the settlement's event never came.
    const processing = await storeIntentEvent(o, 'payment_intent.processing', 'processing', Math.floor(Date.now() / 1000) - 3600);
    expect((await applier.applyEvents([processing])).get(processing)).toBe('applied');
    await tier.db.query(`UPDATE payments SET checked_at = now() - interval '1 hour' WHERE id = ANY($1)`, [[o.intentId, waiting.intentId]]);
    tier.psp.setIntent(o.intentId, { status: 'succeeded' });
    // What the PSP would answer for the waiting one, were it asked: it must not be.
    tier.psp.setIntent(waiting.intentId, { status: 'succeeded' });
    const seenOpen: number[] = [];
    tier.psp.onCall = async () => void seenOpen.push(await openTransactions(tier.db));
    const pass = await tier.app.get(ReconcilerService).runOnce();
    expect(pass).toMatchObject({ result: 'ok', stalePaymentsChecked: 1, paymentsFixed: 1 });
    expect(tier.psp.calls).toEqual(['list_events', 'retrieve_payment_intent']);
    expect(seenOpen).toEqual([0, 0]);
    expect(await statusOf(o.orderId)).toBe('paid');
    expect(await statusOf(waiting.orderId)).toBe('pending_payment');
    const entries = await history(o.orderId);
    expect(entries).toEqual([
      { from_status: 'pending_payment', to_status: 'processing', event_id: processing },
      { from_status: 'processing', to_status: 'paid', event_id: expect.stringMatching(/^rec_/) },
    ]);
    const record = (await tier.db.query(`SELECT source, status FROM webhook_events WHERE id = $1`, [entries[1].event_id])).rows[0];
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

  it('scans the same in-flight statuses as the partial index payments_in_flight_checked_idx covers', async () => {
    const { rows } = await tier.db.query(`SELECT indexdef FROM pg_indexes WHERE indexname = 'payments_in_flight_checked_idx'`);
    const indexed = [...String(rows[0].indexdef).matchAll(/'(\w+)'::text/g)].map((m) => m[1]);
    expect(indexed.sort()).toEqual([...IN_FLIGHT_PAYMENT_STATUSES].sort());
  });

  it('expires the same unpaid statuses as the partial index orders_unpaid_created_idx covers', async () => {
    const { rows } = await tier.db.query(`SELECT indexdef FROM pg_indexes WHERE indexname = 'orders_unpaid_created_idx'`);
    const indexed = [...String(rows[0].indexdef).matchAll(/'(\w+)'::text/g)].map((m) => m[1]);
    expect(indexed.sort()).toEqual([...EXPIRABLE_STATUSES].sort());
  });

  const newManualOrder = async () => {
    const { order } = await orders.create({ currency: 'usd', items: [{ sku: 'A', name: 'A', unitAmount: 1000, quantity: 1 }], customerEmail: 'a@example.com', captureMethod: 'manual' });
    tier.psp.calls.length = 0;
    return { orderId: order.id, intentId: (order.payment as { id: string }).id };
  };

  it('captures with no transaction open during the PSP call; the success webhook applied meanwhile leaves one transition to paid', async () => {
    const o = await newManualOrder();
    const authorizedAt = Math.floor(Date.now() / 1000) - 10;
    await applier.applyEvents([await storeIntentEvent(o, 'payment_intent.amount_capturable_updated', 'requires_capture', authorizedAt, { amount_capturable: 1000 })]);
    expect(await statusOf(o.orderId)).toBe('authorized');
    const seenOpen: number[] = [];
    const success = await storeIntentEvent(o, 'payment_intent.succeeded', 'succeeded', authorizedAt + 1, { amount_received: 600 });
    tier.psp.setIntent(o.intentId, { status: 'requires_capture', amount: 1000, amount_capturable: 1000 });
    tier.psp.onCall = async (operation) => {
      seenOpen.push(await openTransactions(tier.db));
      if (operation === 'capture_payment_intent') await applier.applyEvents([success]);
    };
    const view = await orders.capture(o.orderId, 600);
    expect(seenOpen).toEqual([0]);
    expect(view).toMatchObject({ status: 'paid', amountCaptured: 600, amountCapturable: 0 });
    expect((await history(o.orderId)).map((h) => h.to_status)).toEqual(['authorized', 'paid']);
    await expect(orders.capture(o.orderId)).rejects.toMatchObject({ code: ErrorCode.Conflict });
  });

  it('refuses to capture more than is held, before asking the PSP', async () => {
    const o = await newManualOrder();
    await applier.applyEvents([await storeIntentEvent(o, 'payment_intent.amount_capturable_updated', 'requires_capture', Math.floor(Date.now() / 1000), { amount_capturable: 1000 })]);
    await expect(orders.capture(o.orderId, 1001)).rejects.toMatchObject({ code: ErrorCode.Validation, message: expect.stringMatching(/amount 1001 is more than the 1000/) });
    expect(tier.psp.calls).toEqual([]);
  });

  it('expires an unpaid order past the timeout: the PaymentIntent canceled at the PSP with no transaction open, then the order', async () => {
    const o = await newOrder();
    await tier.db.query(`UPDATE orders SET created_at = now() - interval '2 days' WHERE id = $1`, [o.orderId]);
    const seenOpen: number[] = [];
    tier.psp.onCall = async () => void seenOpen.push(await openTransactions(tier.db));
    expect(await orders.expireUnpaid()).toBeGreaterThanOrEqual(1);
    expect(seenOpen.every((n) => n === 0)).toBe(true);
    expect(tier.psp.intents.get(o.intentId)).toMatchObject({ status: 'canceled', cancellation_reason: 'abandoned' });
    expect(await statusOf(o.orderId)).toBe('expired');
    expect(await orders.expireUnpaid()).toBe(0);
  });

  it('lets a payment that wins the race against expiry end paid: the PSP refuses the cancel and its state is applied', async () => {
    const o = await newOrder();
    await tier.db.query(`UPDATE orders SET created_at = now() - interval '2 days' WHERE id = $1`, [o.orderId]);
    tier.psp.setIntent(o.intentId, { status: 'succeeded', amount_received: 1000 });
    tier.psp.onCall = async (operation) => {
      if (operation === 'cancel_payment_intent') throw new DomainError(ErrorCode.PspRejected, 'You cannot cancel this PaymentIntent because it has a status of succeeded.');
    };
    await orders.expireUnpaid();
    expect(await statusOf(o.orderId)).toBe('paid');
  });

  it('sends an order to needs_review when another PaymentIntent naming it succeeds, and lists that payment', async () => {
    const o = await newOrder();
    await applier.applyEvents([await storeIntentEvent(o, 'payment_intent.succeeded', 'succeeded', Math.floor(Date.now() / 1000))]);
    const other = { orderId: o.orderId, intentId: 'pi_fake_dashboard_charge' };
    const failed = await storeIntentEvent(other, 'payment_intent.payment_failed', 'requires_payment_method', Math.floor(Date.now() / 1000));
    expect((await applier.applyEvents([failed])).get(failed)).toBe('noop');
    expect(await statusOf(o.orderId)).toBe('paid');
    const taken = await storeIntentEvent(other, 'payment_intent.succeeded', 'succeeded', Math.floor(Date.now() / 1000), { amount: 700 });
    await applier.applyEvents([taken, taken]);
    const view = await orders.get(o.orderId);
    expect(view).toMatchObject({ status: 'needs_review', reviewReason: expect.stringMatching(/pi_fake_dashboard_charge took 700 usd/), unexpectedPayments: [{ id: 'pi_fake_dashboard_charge', amount: 700, currency: 'usd', status: 'succeeded' }] });
    expect(view.history.map((h) => h.to)).toEqual(['paid', 'needs_review']);
  });

  describe('hosted checkout (Checkout Sessions)', () => {
    const checkout = { successUrl: 'http://shop.test/done?session={CHECKOUT_SESSION_ID}', cancelUrl: 'http://shop.test/cart' };
    const newCheckoutOrder = async (captureMethod: 'automatic' | 'manual' = 'automatic') => {
      const { order } = await orders.create({ currency: 'usd', items: [{ sku: 'A', name: 'A', unitAmount: 1000, quantity: 1 }], customerEmail: 'a@example.com', checkout, captureMethod });
      tier.psp.calls.length = 0;
      return order;
    };
    const storeSessionEvent = async (order: { id: string; payment: { checkoutSessionId?: string } | null }, type: string, fields: Record<string, unknown>, created: number) => {
      const id = `evt_svc_${++seq}`;
      const object = { id: order.payment!.checkoutSessionId, object: 'checkout.session', amount_total: 1000, currency: 'usd', metadata: { order_id: order.id }, client_reference_id: order.id, ...fields };
      await inbox.storeMany([{ id, type, created, payload: JSON.stringify({ id, object: 'event', type, created, data: { object } }) }], 'webhook');
      return id;
    };

    it('creates the order with a session: no PaymentIntent yet, the checkout URL to send the customer to', async () => {
      const order = await newCheckoutOrder();
      expect(order.payment).toEqual({ id: null, status: 'open', clientSecret: null, checkoutSessionId: expect.stringMatching(/^cs_fake_/), checkoutUrl: expect.stringMatching(/^https:/) });
      const session = tier.psp.sessions.get(order.payment!.checkoutSessionId!)!;
      expect(session).toMatchObject({ client_reference_id: order.id, metadata: { order_id: order.id } });
      // Stripe's floor of 30 minutes, though the test configuration's timeout may be shorter.
      expect(session.expires_at * 1000 - Date.now()).toBeGreaterThanOrEqual(30 * 60_000);
    });

    it("pays the order from the session's completion, attaching the session's PaymentIntent; its own events then apply to it", async () => {
      const order = await newCheckoutOrder();
      const t = Math.floor(Date.now() / 1000);
      await applier.applyEvents([await storeSessionEvent(order, 'checkout.session.completed', { status: 'complete', payment_status: 'paid', payment_intent: 'pi_fake_from_session_1' }, t)]);
      const view = await orders.get(order.id);
      expect(view).toMatchObject({ status: 'paid', payment: { id: 'pi_fake_from_session_1', checkoutSessionId: order.payment!.checkoutSessionId } });
      const success = await storeIntentEvent({ orderId: order.id, intentId: 'pi_fake_from_session_1' }, 'payment_intent.succeeded', 'succeeded', t);
      expect((await applier.applyEvents([success])).get(success)).toBe('noop');
      expect((await orders.get(order.id)).status).toBe('paid');
    });

    it("takes the session's PaymentIntent as the order's own when its events come before the session's (never as an unexpected payment)", async () => {
      const order = await newCheckoutOrder();
      const t = Math.floor(Date.now() / 1000);
      await applier.applyEvents([await storeIntentEvent({ orderId: order.id, intentId: 'pi_fake_from_session_2' }, 'payment_intent.succeeded', 'succeeded', t)]);
      await applier.applyEvents([await storeSessionEvent(order, 'checkout.session.completed', { status: 'complete', payment_status: 'paid', payment_intent: 'pi_fake_from_session_2' }, t)]);
      const view = await orders.get(order.id);
      expect(view).toMatchObject({ status: 'paid', payment: { id: 'pi_fake_from_session_2' } });
      expect(view.unexpectedPayments).toBeUndefined();
      expect(view.history.map((h) => h.to)).toEqual(['paid']);
    });

    it('waits on a completed but unpaid session (a delayed method), then follows its async result', async () => {
      const order = await newCheckoutOrder();
      const t = Math.floor(Date.now() / 1000);
      await applier.applyEvents([await storeSessionEvent(order, 'checkout.session.completed', { status: 'complete', payment_status: 'unpaid', payment_intent: 'pi_fake_from_session_3' }, t)]);
      expect((await orders.get(order.id)).status).toBe('pending_payment');
      await applier.applyEvents([await storeSessionEvent(order, 'checkout.session.async_payment_failed', { status: 'complete', payment_status: 'unpaid', payment_intent: 'pi_fake_from_session_3' }, t + 1)]);
      expect((await orders.get(order.id)).status).toBe('payment_failed');
    });

    it('expires the order when its session expires, and the unpaid-order sweep expires the session at the PSP first', async () => {
      const byEvent = await newCheckoutOrder();
      await applier.applyEvents([await storeSessionEvent(byEvent, 'checkout.session.expired', { status: 'expired', payment_status: 'unpaid', payment_intent: null }, Math.floor(Date.now() / 1000))]);
      expect((await orders.get(byEvent.id)).status).toBe('expired');

      const bySweep = await newCheckoutOrder();
      await tier.db.query(`UPDATE orders SET created_at = now() - interval '2 days' WHERE id = $1`, [bySweep.id]);
      await orders.expireUnpaid();
      expect(tier.psp.calls).toContain('expire_checkout_session');
      expect(tier.psp.sessions.get(bySweep.payment!.checkoutSessionId!)!.status).toBe('expired');
      expect((await orders.get(bySweep.id)).status).toBe('expired');
    });

    it('leaves an open session to its events; one still keyed by its session but in flight is retrieved and its PaymentIntent applied', async () => {
      const open = await newCheckoutOrder();
      const held = await newCheckoutOrder('manual');
      // A completion that named no PaymentIntent: authorized, the payment still keyed by the session.
      await applier.applyEvents([await storeSessionEvent(held, 'checkout.session.completed', { status: 'complete', payment_status: 'paid', payment_intent: null }, Math.floor(Date.now() / 1000))]);
      expect(await orders.get(held.id)).toMatchObject({ status: 'authorized', payment: { id: null, status: 'requires_capture' } });
      const sessionIds = [open.payment!.checkoutSessionId!, held.payment!.checkoutSessionId!];
      await tier.db.query(`UPDATE payments SET checked_at = now() - interval '1 hour' WHERE checkout_session_id = ANY($1)`, [sessionIds]);
      // Both were paid at the PSP and no event came: the open one's customer acted, so its events are for the listing to find.
      tier.psp.setIntent('pi_fake_from_session_4', { status: 'succeeded', amount: 1000, currency: 'usd', amount_received: 1000, metadata: { order_id: open.id } });
      Object.assign(tier.psp.sessions.get(sessionIds[0]!)!, { status: 'complete', payment_status: 'paid', payment_intent: tier.psp.intents.get('pi_fake_from_session_4') });
      tier.psp.setIntent('pi_fake_from_session_5', { status: 'succeeded', amount: 1000, currency: 'usd', amount_received: 1000, amount_capturable: 0, metadata: { order_id: held.id } });
      Object.assign(tier.psp.sessions.get(sessionIds[1]!)!, { payment_intent: tier.psp.intents.get('pi_fake_from_session_5') });
      await tier.app.get(ReconcilerService).runOnce();
      expect(tier.psp.calls).toEqual(['list_events', 'retrieve_checkout_session']);
      expect(await orders.get(held.id)).toMatchObject({ status: 'paid', payment: { id: 'pi_fake_from_session_5' } });
      expect(await orders.get(open.id)).toMatchObject({ status: 'pending_payment', payment: { id: null, status: 'open' } });
    });
  });

  describe('dispute outcomes and refunds that fail', () => {
    const storeObjectEvent = async (type: string, object: Record<string, unknown>, created: number) => {
      const id = `evt_svc_${++seq}`;
      await inbox.storeMany([{ id, type, created, payload: JSON.stringify({ id, object: 'event', type, created, data: { object } }) }], 'webhook');
      return id;
    };
    const paidOrder = async () => {
      const o = await newOrder();
      await applier.applyEvents([await storeIntentEvent(o, 'payment_intent.succeeded', 'succeeded', Math.floor(Date.now() / 1000) - 100, { amount_received: 1000 })]);
      return o;
    };
    const dispute = (o: { intentId: string }, id: string, status: string) => ({
      id, object: 'dispute', payment_intent: o.intentId, charge: 'ch_x', amount: 1000, currency: 'usd', status, reason: 'fraudulent', evidence_details: { due_by: 1_900_000_000 },
    });

    it('shows the dispute, returns a won one to the status before it, in any order of its events', async () => {
      const o = await paidOrder();
      const t = Math.floor(Date.now() / 1000);
      // closed (won) delivered before created: the order ends paid, the dispute shows won.
      const closed = await storeObjectEvent('charge.dispute.closed', dispute(o, 'dp_svc_1', 'won'), t + 5);
      const created = await storeObjectEvent('charge.dispute.created', dispute(o, 'dp_svc_1', 'needs_response'), t);
      await applier.applyEvents([closed]);
      await applier.applyEvents([created]);
      const view = await orders.get(o.orderId);
      expect(view).toMatchObject({ status: 'paid', dispute: { id: 'dp_svc_1', status: 'won', reason: 'fraudulent', amount: 1000, evidenceDueBy: new Date(1_900_000_000_000).toISOString() } });

      const o2 = await paidOrder();
      await applier.applyEvents([await storeObjectEvent('charge.dispute.created', dispute(o2, 'dp_svc_2', 'needs_response'), t)]);
      expect((await orders.get(o2.orderId)).status).toBe('disputed');
      await applier.applyEvents([await storeObjectEvent('charge.dispute.closed', dispute(o2, 'dp_svc_2', 'won'), t + 5)]);
      expect((await orders.get(o2.orderId)).history.map((h) => h.to)).toEqual(['paid', 'disputed', 'paid']);
    });

    it('takes evidence and acceptance to the PSP for an open dispute only, and a lost one ends dispute_lost', async () => {
      const o = await paidOrder();
      const t = Math.floor(Date.now() / 1000);
      await expect(orders.acceptDispute(o.orderId)).rejects.toMatchObject({ code: ErrorCode.Conflict, message: expect.stringMatching(/no open dispute/) });
      tier.psp.disputes.set('dp_svc_3', dispute(o, 'dp_svc_3', 'needs_response') as unknown as Stripe.Dispute);
      await applier.applyEvents([await storeObjectEvent('charge.dispute.created', dispute(o, 'dp_svc_3', 'needs_response'), t)]);
      const accepted = await orders.acceptDispute(o.orderId);
      expect(accepted).toMatchObject({ status: 'dispute_lost', dispute: { status: 'lost' } });
      expect(tier.psp.calls).toContain('close_dispute');
      await expect(orders.submitDisputeEvidence(o.orderId, 'too late')).rejects.toMatchObject({ code: ErrorCode.Conflict });
    });

    it('lowers amountRefunded and the status when a refund that succeeded fails, with one history entry', async () => {
      const o = await paidOrder();
      const t = Math.floor(Date.now() / 1000);
      const refund = { id: 're_svc_1', object: 'refund', payment_intent: o.intentId, charge: 'ch_x', amount: 1000, currency: 'usd' };
      await applier.applyEvents([await storeObjectEvent('refund.created', { ...refund, status: 'succeeded' }, t)]);
      expect(await orders.get(o.orderId)).toMatchObject({ status: 'refunded', amountRefunded: 1000 });
      tier.psp.charges.set('ch_x', { id: 'ch_x', object: 'charge', refunds: { object: 'list', data: [{ ...refund, status: 'failed' }] } } as unknown as Stripe.Charge);
      const failed = await storeObjectEvent('charge.refund.updated', { ...refund, status: 'failed' }, t + 9);
      const seenOpen: number[] = [];
      tier.psp.onCall = async () => void seenOpen.push(await openTransactions(tier.db));
      await applier.applyEvents([failed, failed]);
      // The PSP was asked for the charge's refunds as they are now, between transactions.
      expect(tier.psp.calls).toContain('retrieve_charge');
      expect(seenOpen.every((n) => n === 0)).toBe(true);
      // The older 'succeeded' delivered again changes nothing: a failed refund stays failed.
      await applier.applyEvents([await storeObjectEvent('refund.updated', { ...refund, status: 'succeeded' }, t + 1)]);
      const view = await orders.get(o.orderId);
      expect(view).toMatchObject({ status: 'paid', amountRefunded: 0 });
      expect(view.history.map((h) => h.to)).toEqual(['paid', 'refunded', 'paid']);
    });

    it("applies a refund's failure with the charge's refunds as they are now: a second refund's older snapshot, delivered after, cannot repeat a transition", async () => {
      const o = await paidOrder();
      const t = Math.floor(Date.now() / 1000);
      const a = { id: 're_svc_a', object: 'refund', payment_intent: o.intentId, charge: 'ch_y', amount: 400, currency: 'usd' };
      const b = { id: 're_svc_b', object: 'refund', payment_intent: o.intentId, charge: 'ch_y', amount: 600, currency: 'usd' };
      // At the PSP: a succeeded, b succeeded, a failed, b failed. Delivered: a, a's failure, then b's events.
      tier.psp.charges.set('ch_y', { id: 'ch_y', object: 'charge', refunds: { object: 'list', data: [{ ...b, status: 'failed' }, { ...a, status: 'failed' }] } } as unknown as Stripe.Charge);
      await applier.applyEvents([await storeObjectEvent('refund.created', { ...a, status: 'succeeded' }, t)]);
      await applier.applyEvents([await storeObjectEvent('refund.failed', { ...a, status: 'failed' }, t)]);
      await applier.applyEvents([await storeObjectEvent('refund.created', { ...b, status: 'succeeded' }, t)]);
      await applier.applyEvents([await storeObjectEvent('refund.failed', { ...b, status: 'failed' }, t)]);
      const view = await orders.get(o.orderId);
      expect(view).toMatchObject({ status: 'paid', amountRefunded: 0 });
      expect(view.history.map((h) => `${h.from}->${h.to}`)).toEqual(['pending_payment->paid', 'paid->partially_refunded', 'partially_refunded->paid']);
    });
  });
});
