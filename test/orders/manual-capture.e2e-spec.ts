import request from 'supertest';
import type Stripe from 'stripe';
import { chargeFigures, eventsFor, historyProblems, pspPayment } from '../support/psp-flows';
import { orderBody, startTestStack, TestStack, OrderJson } from '../support/test-app';
import { createOrder, getOrder, settled, strayPayment } from '../support/order-api';
import { waitFor } from '../support/wait';

/**
 * Manual capture, void, authorization expiry and unpaid-order expiry through
 * the whole product: real HTTP, PostgreSQL, Redis, and the Stripe SDK
 * confirming at the mock PSP as a checkout would.
 */

/** orderBody()'s total. */
const AMOUNT = 1299 * 2 + 850;
const GAUGE = 'settle_authorizations_expiring_24h';
const CAPTURE_ROUTE = 'POST /v1/payment_intents/:id/capture';
const RETRIEVE_ROUTE = 'GET /v1/payment_intents/:id';
const UNPAID = ['pending_payment', 'requires_action', 'payment_failed', 'processing'];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for the order to reach `status`; a timeout says where it was instead. */
async function until(stack: TestStack, id: string, status: string, timeoutMs = 15000): Promise<OrderJson> {
  let last: OrderJson | undefined;
  try {
    return await waitFor<OrderJson | null>(async () => {
      last = await getOrder(stack, id);
      return last.status === status ? last : null;
    }, `order ${id} ${status}`, timeoutMs) as OrderJson;
  } catch (err) {
    throw new Error(`${(err as Error).message}; it is ${last?.status} with history ${JSON.stringify(last?.history.map((h) => `${h.from}->${h.to}`))}`);
  }
}

/** Confirms as a checkout would; a declined card answers 402 as at Stripe, and the failure is in the events. */
async function confirm(stack: TestStack, order: OrderJson, method: string): Promise<void> {
  try {
    await stack.stripe.paymentIntents.confirm(order.payment.id, { payment_method: method });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 402) throw err;
  }
}

async function authorize(stack: TestStack, order: OrderJson): Promise<OrderJson> {
  await confirm(stack, order, 'pm_card_visa');
  return until(stack, order.id, 'authorized');
}

function capture(stack: TestStack, id: string, body: Record<string, unknown> = {}): request.Test {
  return request(stack.url).post(`/orders/${id}/capture`).set(stack.admin).send(body);
}

async function metric(stack: TestStack, name: string, labels = ''): Promise<number | null> {
  const text = (await request(stack.url).get('/metrics').set(stack.admin).expect(200)).text;
  const escaped = labels.replace(/[{}"]/g, (c) => `\\${c}`);
  const match = new RegExp(`^${name}${labels ? escaped : '(?:\\{[^}]*\\})?'} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : null;
}

const reconcilerPasses = (stack: TestStack) => metric(stack, 'settle_reconciler_passes_total', '{result="ok"}').then((n) => n ?? 0);

/** Waits for `count` more completed reconciler passes (RECONCILE_INTERVAL_MS runs them). */
async function morePasses(stack: TestStack, count: number): Promise<void> {
  const start = await reconcilerPasses(stack);
  await waitFor(async () => (await reconcilerPasses(stack)) >= start + count, `${count} more reconciler passes`, 20000, 100);
}

const routeCalls = (stack: TestStack, route: string) => stack.mock.stats().byRoute[route] ?? 0;
const transitionsTo = (order: OrderJson, status: string) => order.history.filter((h) => h.to === status).length;
const path = (order: OrderJson) => order.history.map((h) => h.to);

/** Sends every event of the PaymentIntent to the app again (it was not forwarded, or is sent once more). */
function redeliverAll(stack: TestStack, pi: string): void {
  for (const event of eventsFor(stack.mock, pi)) stack.mock.redeliver(event.id);
}

describe('manual capture and void (real HTTP, PostgreSQL, Redis, Stripe SDK -> mock PSP)', () => {
  let stack: TestStack;

  beforeAll(async () => {
    // The mock in real time: an authorization's capture window is Stripe's 7 days, well past the gauge's 24 hours.
    stack = await startTestStack({ mock: { timeScale: 1 } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('creates a manual-capture order with a capture_method=manual PaymentIntent; automatic stays the default', async () => {
    const manual = await createOrder(stack, { captureMethod: 'manual' });
    expect(manual).toMatchObject({ status: 'pending_payment', amount: AMOUNT, captureMethod: 'manual', amountCapturable: 0, captureBefore: null });
    expect(manual.amountCaptured ?? null).toBeNull();
    expect((await stack.stripe.paymentIntents.retrieve(manual.payment.id)).capture_method).toBe('manual');
    expect(await getOrder(stack, manual.id)).toEqual(manual);

    for (const overrides of [{}, { captureMethod: 'automatic' }]) {
      const automatic = await createOrder(stack, overrides);
      expect(automatic.captureMethod).toBe('automatic');
      expect(automatic.captureBefore ?? null).toBeNull();
      expect((await stack.stripe.paymentIntents.retrieve(automatic.payment.id)).capture_method).not.toBe('manual');
    }

    const bad = await request(stack.url).post('/orders').send(orderBody({ captureMethod: 'later' })).expect(400);
    expect(bad.body).toMatchObject({ statusCode: 400, error: 'Bad Request', message: expect.stringMatching(/captureMethod/) });
  });

  it('captures an authorization in full: authorized, then paid with amountCaptured, captured once at the PSP', async () => {
    const order = await createOrder(stack, { captureMethod: 'manual' });
    const before = routeCalls(stack, CAPTURE_ROUTE);
    // Nothing is held before the customer has authorized the payment.
    await capture(stack, order.id).expect(409);

    const authorized = await authorize(stack, order);
    const { intent, charge } = await pspPayment(stack.stripe, order.payment.id);
    expect(intent.status).toBe('requires_capture');
    expect(authorized).toMatchObject({ captureMethod: 'manual', amountCapturable: AMOUNT, amountRefunded: 0 });
    expect(authorized.amountCaptured ?? null).toBeNull();
    // The PSP's own deadline: Stripe shows it as the charge's capture_before (unix seconds).
    expect(authorized.captureBefore).toEqual(expect.any(String));
    expect(new Date(authorized.captureBefore as string).getTime()).toBe((charge?.payment_method_details?.card?.capture_before ?? 0) * 1000);
    // Seven days out: not among the authorizations that lapse within 24 hours.
    expect(await metric(stack, GAUGE)).toBe(0);

    await request(stack.url).post(`/orders/${order.id}/capture`).send({}).expect(401);
    for (const amount of [0, -5, 12.5, '100']) {
      const res = await capture(stack, order.id, { amount }).expect(400);
      expect({ amount, message: res.body.message }).toEqual({ amount, message: expect.stringMatching(/amount/) });
    }
    expect(routeCalls(stack, CAPTURE_ROUTE)).toBe(before);
    const tooMuch = await capture(stack, order.id, { amount: AMOUNT + 1 }).expect(400);
    expect(tooMuch.body.message).toMatch(/amount/);
    expect((await getOrder(stack, order.id)).status).toBe('authorized');

    const captured = await capture(stack, order.id).expect(200);
    expect(captured.body).toMatchObject({ id: order.id, captureMethod: 'manual' });
    expect(['authorized', 'paid']).toContain(captured.body.status);
    await until(stack, order.id, 'paid');
    await settled(stack);
    const paid = await getOrder(stack, order.id);
    expect(paid).toMatchObject({ status: 'paid', amountCaptured: AMOUNT, amountCapturable: 0, amountRefunded: 0, payment: { status: 'succeeded' } });
    expect(historyProblems(paid.history)).toBeNull();
    expect(path(paid)).toEqual(['authorized', 'paid']);

    expect(routeCalls(stack, CAPTURE_ROUTE)).toBe(before + 1);
    const after = await pspPayment(stack.stripe, order.payment.id);
    expect(after.intent).toMatchObject({ status: 'succeeded', amount_received: AMOUNT });
    expect(chargeFigures(after.charge)).toEqual({ amountCaptured: AMOUNT, amountRefunded: 0 });
    expect(eventsFor(stack.mock, order.payment.id).filter((e) => e.type === 'charge.captured')).toHaveLength(1);
  });

  it('captures part: paid with amountCaptured below the amount; refunds count against what was captured', async () => {
    const order = await createOrder(stack, { captureMethod: 'manual' });
    await authorize(stack, order);
    await capture(stack, order.id, { amount: 2000 }).expect(200);
    await until(stack, order.id, 'paid');
    await settled(stack);
    // The PSP counts the released 1448 in the charge's amount_refunded; nothing was refunded to the customer.
    const { intent, charge } = await pspPayment(stack.stripe, order.payment.id);
    expect(intent.amount_received).toBe(2000);
    expect(charge).toMatchObject({ amount_captured: 2000, amount_refunded: AMOUNT - 2000 });
    expect(await getOrder(stack, order.id)).toMatchObject({ status: 'paid', amount: AMOUNT, amountCaptured: 2000, amountCapturable: 0, amountRefunded: 0 });

    const refundCalls = routeCalls(stack, 'POST /v1/refunds');
    for (const amount of [2001, AMOUNT]) {
      const res = await request(stack.url).post(`/orders/${order.id}/refunds`).set(stack.admin).send({ amount }).expect(409);
      expect(res.body.message).toMatch(/2000/);
    }
    expect(routeCalls(stack, 'POST /v1/refunds')).toBe(refundCalls);

    const first = await request(stack.url).post(`/orders/${order.id}/refunds`).set(stack.admin).send({ amount: 500 }).expect(201);
    expect(first.body.refund).toMatchObject({ amount: 500 });
    expect(await until(stack, order.id, 'partially_refunded')).toMatchObject({ amountRefunded: 500, amountCaptured: 2000 });
    // "The rest" is the rest of what was captured.
    const rest = await request(stack.url).post(`/orders/${order.id}/refunds`).set(stack.admin).send({}).expect(201);
    expect(rest.body.refund).toMatchObject({ amount: 1500 });
    await until(stack, order.id, 'refunded');
    await settled(stack);
    const refunded = await getOrder(stack, order.id);
    expect(refunded).toMatchObject({ status: 'refunded', amountRefunded: 2000, amountCaptured: 2000 });
    expect(historyProblems(refunded.history)).toBeNull();
    expect(path(refunded)).toEqual(['authorized', 'paid', 'partially_refunded', 'refunded']);
    expect(chargeFigures((await pspPayment(stack.stripe, order.payment.id)).charge)).toEqual({ amountCaptured: 2000, amountRefunded: 2000 });
    await request(stack.url).post(`/orders/${order.id}/refunds`).set(stack.admin).send({}).expect(409);
  });

  it('a second capture answers 409 and never reaches the PSP; concurrent captures capture once', async () => {
    const order = await createOrder(stack, { captureMethod: 'manual' });
    await authorize(stack, order);
    const before = routeCalls(stack, CAPTURE_ROUTE);
    await capture(stack, order.id).expect(200);
    await until(stack, order.id, 'paid');
    await capture(stack, order.id).expect(409);
    await capture(stack, order.id, { amount: 100 }).expect(409);
    expect(routeCalls(stack, CAPTURE_ROUTE)).toBe(before + 1);

    const raced = await createOrder(stack, { captureMethod: 'manual' });
    await authorize(stack, raced);
    const answers = await Promise.all([1, 2, 3, 4].map(() => capture(stack, raced.id)));
    const statuses = answers.map((a) => a.status);
    expect(statuses.every((s) => s === 200 || s === 409)).toBe(true);
    expect(statuses).toContain(200);
    await until(stack, raced.id, 'paid');
    await settled(stack);
    for (const o of [order, raced]) {
      const paid = await getOrder(stack, o.id);
      expect(paid).toMatchObject({ status: 'paid', amountCaptured: AMOUNT });
      expect(historyProblems(paid.history)).toBeNull();
      expect(transitionsTo(paid, 'paid')).toBe(1);
      expect(eventsFor(stack.mock, o.payment.id).filter((e) => e.type === 'charge.captured')).toHaveLength(1);
      expect((await stack.stripe.paymentIntents.retrieve(o.payment.id)).amount_received).toBe(AMOUNT);
    }
  });

  it('a capture made at the PSP directly counts as success: 200, paid, and its late webhooks add nothing', async () => {
    const order = await createOrder(stack, { captureMethod: 'manual' });
    await authorize(stack, order);
    // Nothing reaches the app, so only the capture route can learn of the capture.
    stack.mock.setForwardTo(undefined);
    try {
      await stack.stripe.paymentIntents.capture(order.payment.id);
      const res = await capture(stack, order.id).expect(200);
      expect(res.body.id).toBe(order.id);
      expect(await until(stack, order.id, 'paid')).toMatchObject({ amountCaptured: AMOUNT });
    } finally {
      stack.mock.setForwardTo(`${stack.url}/webhooks/stripe`);
    }
    redeliverAll(stack, order.payment.id);
    await settled(stack);
    const paid = await getOrder(stack, order.id);
    expect(paid).toMatchObject({ status: 'paid', amountCaptured: AMOUNT, amountRefunded: 0 });
    expect(historyProblems(paid.history)).toBeNull();
    expect(path(paid)).toEqual(['authorized', 'paid']);
  });

  it('a capture at the PSP racing the capture route and its own webhooks leaves one transition to paid', async () => {
    const orders = await Promise.all([1, 2, 3, 4].map(() => createOrder(stack, { captureMethod: 'manual' })));
    await Promise.all(orders.map((o) => authorize(stack, o)));
    const answers = await Promise.all(
      orders.map(async (o) => {
        await stack.stripe.paymentIntents.capture(o.payment.id);
        return (await capture(stack, o.id)).status;
      }),
    );
    // The webhook may have made it paid before the route looked (409), or not yet (200): either way it is paid once.
    expect(answers.every((s) => s === 200 || s === 409)).toBe(true);
    await Promise.all(orders.map((o) => until(stack, o.id, 'paid')));
    await settled(stack);
    for (const o of orders) {
      const paid = await getOrder(stack, o.id);
      expect(historyProblems(paid.history)).toBeNull();
      expect({ id: o.id, path: path(paid), amountCaptured: paid.amountCaptured }).toEqual({ id: o.id, path: ['authorized', 'paid'], amountCaptured: AMOUNT });
    }
  });

  it('voids an authorization: canceled, the PaymentIntent canceled at the PSP, nothing captured or refunded', async () => {
    const order = await createOrder(stack, { captureMethod: 'manual' });
    await authorize(stack, order);
    const res = await request(stack.url).post(`/orders/${order.id}/cancel`).set(stack.admin).expect(200);
    expect(res.body.status).toBe('canceled');
    const { intent, charge } = await pspPayment(stack.stripe, order.payment.id);
    expect(intent.status).toBe('canceled');
    expect(['automatic', 'abandoned']).not.toContain(intent.cancellation_reason);
    expect(charge).toMatchObject({ captured: false, amount_captured: 0 });

    // The release reads as a full refund of the uncaptured charge at the PSP (charge.refunded): not a refund of the order.
    await settled(stack);
    const canceled = await getOrder(stack, order.id);
    expect(canceled).toMatchObject({ status: 'canceled', amountRefunded: 0, amountCapturable: 0 });
    expect(canceled.amountCaptured ?? null).toBeNull();
    expect(historyProblems(canceled.history)).toBeNull();
    expect(path(canceled)).toEqual(['authorized', 'canceled']);

    const before = routeCalls(stack, CAPTURE_ROUTE);
    await capture(stack, order.id).expect(409);
    expect(routeCalls(stack, CAPTURE_ROUTE)).toBe(before);
    await request(stack.url).post(`/orders/${order.id}/refunds`).set(stack.admin).send({}).expect(409);
  });

  it('answers 409 to a void when the PSP already captured though no webhook has said so; the order ends paid', async () => {
    const order = await createOrder(stack, { captureMethod: 'manual' });
    await authorize(stack, order);
    stack.mock.setForwardTo(undefined);
    try {
      await stack.stripe.paymentIntents.capture(order.payment.id);
      await request(stack.url).post(`/orders/${order.id}/cancel`).set(stack.admin).expect(409);
      expect((await stack.stripe.paymentIntents.retrieve(order.payment.id)).status).toBe('succeeded');
      expect((await getOrder(stack, order.id)).status).not.toBe('canceled');
    } finally {
      stack.mock.setForwardTo(`${stack.url}/webhooks/stripe`);
    }
    redeliverAll(stack, order.payment.id);
    await until(stack, order.id, 'paid');
    await settled(stack);
    const paid = await getOrder(stack, order.id);
    expect(paid).toMatchObject({ status: 'paid', amountCaptured: AMOUNT });
    expect(historyProblems(paid.history)).toBeNull();
    expect(transitionsTo(paid, 'paid')).toBe(1);
  });

  it('a succeeded payment naming the order that is not its own PaymentIntent moves it to needs_review, paid or not', async () => {
    const paidOrder = await createOrder(stack);
    await confirm(stack, paidOrder, 'pm_card_visa');
    await until(stack, paidOrder.id, 'paid');
    const unpaidOrder = await createOrder(stack);

    for (const [order, before] of [[paidOrder, ['paid']], [unpaidOrder, []]] as const) {
      const stray = await strayPayment(stack, order, 1000);
      expect(stray.status).toBe('succeeded');
      await until(stack, order.id, 'needs_review');
      await settled(stack);
      const review = await getOrder(stack, order.id);
      expect(review.reviewReason).toEqual(expect.stringMatching(/\S/));
      expect(review.unexpectedPayments).toEqual([{ id: stray.id, amount: 1000, currency: 'usd', status: 'succeeded' }]);
      // The order's own payment is untouched.
      expect(review.payment.id).toBe(order.payment.id);
      expect(historyProblems(review.history)).toBeNull();
      expect(path(review)).toEqual([...before, 'needs_review']);
    }
  });
});

describe('authorization expiry (the mock shrinks Stripe 7-day capture window to about 12 s)', () => {
  let stack: TestStack;

  beforeAll(async () => {
    // 7 days x 0.00002 = 12 s. The mock forgets objects after 30 days x 0.00002 = 52 s, so these tests stay short.
    stack = await startTestStack({ env: { CAPTURE_METHOD: 'manual' }, mock: { timeScale: 0.00002 } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('CAPTURE_METHOD=manual makes manual capture the default; an order may still ask for automatic', async () => {
    const byDefault = await createOrder(stack);
    expect(byDefault.captureMethod).toBe('manual');
    expect((await stack.stripe.paymentIntents.retrieve(byDefault.payment.id)).capture_method).toBe('manual');
    const automatic = await createOrder(stack, { captureMethod: 'automatic' });
    expect(automatic.captureMethod).toBe('automatic');
    expect((await stack.stripe.paymentIntents.retrieve(automatic.payment.id)).capture_method).not.toBe('manual');
  });

  it('lists authorizations soonest deadline first, counts them in the gauge, and expires them when the PSP lets them lapse', async () => {
    const orders = [await createOrder(stack), await createOrder(stack), await createOrder(stack)];
    expect(await metric(stack, GAUGE)).toBe(0);
    // Authorized neither in creation order nor in its reverse, a second apart so that capture_before (whole seconds) differs.
    const byDeadline = [orders[1]!, orders[0]!, orders[2]!];
    for (const [i, order] of byDeadline.entries()) {
      if (i > 0) await sleep(1100);
      await confirm(stack, order, 'pm_card_visa');
    }
    const authorized = await Promise.all(byDeadline.map((o) => until(stack, o.id, 'authorized', 8000)));
    const deadlines = authorized.map((o) => new Date(o.captureBefore as string).getTime());
    for (let i = 1; i < deadlines.length; i++) expect(deadlines[i]).toBeGreaterThan(deadlines[i - 1]!);
    for (const o of authorized) {
      const { charge } = await pspPayment(stack.stripe, o.payment.id);
      expect(new Date(o.captureBefore as string).getTime()).toBe((charge?.payment_method_details?.card?.capture_before ?? 0) * 1000);
    }

    const listed = (await request(stack.url).get('/orders').query({ status: 'authorized' }).set(stack.admin).expect(200)).body;
    expect(listed.data.map((o: OrderJson) => o.id)).toEqual(byDeadline.map((o) => o.id));
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const page: request.Response = await request(stack.url)
        .get('/orders')
        .query({ status: 'authorized', limit: 1, ...(cursor ? { cursor } : {}) })
        .set(stack.admin)
        .expect(200);
      expect(page.body.data.length).toBeLessThanOrEqual(1);
      paged.push(...page.body.data.map((o: OrderJson) => o.id));
      cursor = page.body.nextCursor;
    } while (cursor && paged.length < 10);
    expect(paged).toEqual(byDeadline.map((o) => o.id));
    // All three lapse within seconds, so within 24 hours.
    await waitFor(async () => (await metric(stack, GAUGE)) === 3, `${GAUGE} counting 3`, 5000, 100);

    // Not captured in time: the PSP cancels each authorization (charge.expired, payment_intent.canceled).
    const expired = await Promise.all(byDeadline.map((o) => until(stack, o.id, 'expired', 30000)));
    await settled(stack);
    for (const o of expired) {
      const { intent, charge } = await pspPayment(stack.stripe, o.payment.id);
      expect(intent).toMatchObject({ status: 'canceled', cancellation_reason: 'automatic' });
      expect(charge?.captured).toBe(false);
      const final = await getOrder(stack, o.id);
      expect(final).toMatchObject({ status: 'expired', amountRefunded: 0, amountCapturable: 0 });
      expect(final.amountCaptured ?? null).toBeNull();
      expect(historyProblems(final.history)).toBeNull();
      expect(path(final)).toEqual(['authorized', 'expired']);
      expect(eventsFor(stack.mock, o.payment.id).map((e) => e.type)).toContain('charge.expired');
    }
    await waitFor(async () => (await metric(stack, GAUGE)) === 0, `${GAUGE} back to 0`, 5000, 100);
    expect((await request(stack.url).get('/orders').query({ status: 'authorized' }).set(stack.admin).expect(200)).body.data).toEqual([]);
    const before = routeCalls(stack, CAPTURE_ROUTE);
    await capture(stack, orders[0]!.id).expect(409);
    expect(routeCalls(stack, CAPTURE_ROUTE)).toBe(before);
  }, 60000);
});

describe('unpaid-order expiry (ORDER_PAYMENT_TIMEOUT_MINUTES 0.05 = 3 s, a reconciler pass every 500 ms)', () => {
  const TIMEOUT_MS = 3000;
  let stack: TestStack;

  beforeAll(async () => {
    // RECONCILE_STALE_AFTER_MS 0: every payment in flight (the authorized one below) is retrieved on every pass; one waiting on the customer never is.
    stack = await startTestStack({ env: { ORDER_PAYMENT_TIMEOUT_MINUTES: '0.05', RECONCILE_INTERVAL_MS: '500', RECONCILE_STALE_AFTER_MS: '0' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('expires orders left unpaid, failed or awaiting 3-D Secure, cancels their PaymentIntents, and stops asking the PSP about them', async () => {
    const pending = await createOrder(stack);
    const action = await createOrder(stack);
    await confirm(stack, action, 'pm_card_authenticationRequired');
    const failed = await createOrder(stack);
    await confirm(stack, failed, 'pm_card_chargeDeclined');
    const expected: Array<[OrderJson, string[]]> = [
      [pending, ['expired']],
      [action, ['requires_action', 'expired']],
      [failed, ['payment_failed', 'expired']],
    ];
    await Promise.all(expected.map(([o]) => until(stack, o.id, 'expired', 20000)));
    await settled(stack);
    for (const [order, steps] of expected) {
      const expired = await getOrder(stack, order.id);
      expect(historyProblems(expired.history)).toBeNull();
      expect({ id: order.id, path: path(expired) }).toEqual({ id: order.id, path: steps });
      expect(expired).toMatchObject({ status: 'expired', amountRefunded: 0, payment: { status: 'canceled' } });
      // Not before its time.
      const expiredAt = new Date(expired.history[expired.history.length - 1]!.at).getTime();
      expect(expiredAt - new Date(expired.createdAt).getTime()).toBeGreaterThanOrEqual(TIMEOUT_MS - 100);
      const intent = await stack.stripe.paymentIntents.retrieve(order.payment.id);
      expect(intent).toMatchObject({ status: 'canceled', cancellation_reason: 'abandoned' });
    }

    // Passes that began before the expiry may still have asked the PSP about them (the sweep's cancel); the ones after must not.
    await morePasses(stack, 2);
    stack.mock.resetStats();
    await morePasses(stack, 3);
    expect(routeCalls(stack, RETRIEVE_ROUTE)).toBe(0);
    expect(routeCalls(stack, 'POST /v1/payment_intents/:id/cancel')).toBe(0);
  });

  it('leaves an authorized order alone: it is not unpaid, and can still be captured after the timeout', async () => {
    const order = await createOrder(stack, { captureMethod: 'manual' });
    await authorize(stack, order);
    await sleep(Math.max(0, new Date(order.createdAt).getTime() + TIMEOUT_MS - Date.now()));
    await morePasses(stack, 3);
    expect((await getOrder(stack, order.id)).status).toBe('authorized');
    expect((await stack.stripe.paymentIntents.retrieve(order.payment.id)).status).toBe('requires_capture');
    await capture(stack, order.id).expect(200);
    const paid = await until(stack, order.id, 'paid');
    expect(path(paid)).toEqual(['authorized', 'paid']);
  });

  it('a payment racing the expiry either wins (paid, intent succeeded) or loses (expired, intent canceled): never expired with money taken', async () => {
    // Confirmed from 1.5 s before the deadline to 2.5 s after it; every third order has a declined attempt first.
    const count = 12;
    const runs = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const offset = -1500 + Math.round((i * 4000) / (count - 1));
        const order = await createOrder(stack);
        if (i % 3 === 1) await confirm(stack, order, 'pm_card_chargeDeclined');
        await sleep(Math.max(0, new Date(order.createdAt).getTime() + TIMEOUT_MS + offset - Date.now()));
        let confirmed: 'succeeded' | 'refused';
        try {
          const intent = await stack.stripe.paymentIntents.confirm(order.payment.id, { payment_method: 'pm_card_visa' });
          expect(intent.status).toBe('succeeded');
          confirmed = 'succeeded';
        } catch (err) {
          // The order expired first: its PaymentIntent is canceled and the PSP refuses to confirm it.
          if ((err as { statusCode?: number }).statusCode !== 400) throw err;
          confirmed = 'refused';
        }
        return { order, offset, confirmed };
      }),
    );
    for (const { order } of runs) {
      await waitFor(async () => !UNPAID.includes((await getOrder(stack, order.id)).status), `order ${order.id} no longer unpaid`, 20000);
    }
    await settled(stack);
    await morePasses(stack, 1);
    await settled(stack);

    for (const { order, offset, confirmed } of runs) {
      const final = await getOrder(stack, order.id);
      const intent = await stack.stripe.paymentIntents.retrieve(order.payment.id);
      const seen = { offset, confirmed, status: final.status, intent: intent.status, reason: intent.cancellation_reason };
      if (confirmed === 'succeeded') expect(seen).toEqual({ offset, confirmed, status: 'paid', intent: 'succeeded', reason: null });
      else expect(seen).toEqual({ offset, confirmed, status: 'expired', intent: 'canceled', reason: 'abandoned' });
      expect(final.amountRefunded).toBe(0);
      expect(historyProblems(final.history)).toBeNull();
      expect(transitionsTo(final, final.status)).toBe(1);
    }
    // The race was run: the earliest payments won it and the latest lost it.
    expect(runs.map((r) => r.confirmed)).toContain('succeeded');
    expect(runs.map((r) => r.confirmed)).toContain('refused');
    expect(runs[0]!.confirmed).toBe('succeeded');
    expect(runs[count - 1]!.confirmed).toBe('refused');
  }, 60000);

  it('money taken after an order expired moves it to needs_review with the payment listed', async () => {
    const order = await createOrder(stack);
    await until(stack, order.id, 'expired', 20000);
    // A checkout that comes back late cannot pay the order's own PaymentIntent: it is canceled.
    await expect(stack.stripe.paymentIntents.confirm(order.payment.id, { payment_method: 'pm_card_visa' })).rejects.toMatchObject({ statusCode: 400 });
    await morePasses(stack, 1);
    expect((await getOrder(stack, order.id)).status).toBe('expired');

    const stray = await strayPayment(stack, order);
    expect(stray.status).toBe('succeeded');
    await until(stack, order.id, 'needs_review');
    await settled(stack);
    await morePasses(stack, 1);
    const review = await getOrder(stack, order.id);
    expect(review).toMatchObject({ status: 'needs_review', reviewReason: expect.stringMatching(/\S/), payment: { id: order.payment.id } });
    expect(review.unexpectedPayments).toEqual([{ id: stray.id, amount: AMOUNT, currency: 'usd', status: 'succeeded' }]);
    expect(historyProblems(review.history)).toBeNull();
    expect(path(review)).toEqual(['expired', 'needs_review']);
  });
});
