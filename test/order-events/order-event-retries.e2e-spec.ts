import request from 'supertest';
import { orderBody, startTestStack, TestStack } from '../support/test-app';
import { runFlow } from '../support/psp-flows';
import { waitFor } from '../support/wait';
import { TestRedis } from '../support/redis-server';
import { ORDER_EVENTS_TEST_SECRET, OrderEventReceiver, Received, sequenceProblems } from './receiver';

const inboxSettled = (stack: TestStack) => async () =>
  Number((await stack.db.query(`SELECT count(*) AS n FROM webhook_events WHERE status NOT IN ('processed', 'ignored')`)).rows[0].n) === 0;
const undelivered = async (stack: TestStack) =>
  Number((await stack.db.query(`SELECT count(*) AS n FROM order_event_deliveries WHERE status <> 'delivered'`)).rows[0].n);

async function paidOrders(stack: TestStack, count: number, flow: 'success' | 'failureThenSuccess'): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const order = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body;
    await runFlow(stack.stripe, stack.mock, order.payment.id, flow);
    ids.push(order.id);
  }
  return ids;
}

/** Every request for an order's event n+1 came after event n was answered 2xx. */
function sentBeforePredecessorAccepted(received: Received[]): string[] {
  const accepted = new Map<string, number>(); // order -> highest sequence answered 2xx so far
  const problems: string[] = [];
  for (const r of received) {
    const done = accepted.get(r.data.id) ?? 0;
    if (r.sequence > done + 1) problems.push(`${r.data.id}: ${r.sequence} sent while ${done + 1} was not yet accepted`);
    if (r.answered < 300 && r.sequence === done + 1) accepted.set(r.data.id, r.sequence);
  }
  return problems;
}

describe('Order events: an endpoint that fails for a while', () => {
  let stack: TestStack;
  let receiver: OrderEventReceiver;

  beforeAll(async () => {
    receiver = await OrderEventReceiver.start();
    stack = await startTestStack({
      env: { ORDER_EVENTS_URL: receiver.url, ORDER_EVENTS_SECRET: ORDER_EVENTS_TEST_SECRET, ORDER_EVENTS_RETRY_BASE_MS: '50', ORDER_EVENTS_TIMEOUT_MS: '300' },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await receiver?.stop();
  });

  it('answering 500 (and timing out) for a while, then 200: everything is delivered, each order in order', async () => {
    let calls = 0;
    receiver.answer = () => (++calls % 3 === 0 ? { status: 200, delayMs: 1000 } : { status: 500 }); // the slow "200" comes after the timeout
    const orders = await paidOrders(stack, 6, 'failureThenSuccess');
    await stack.mock.idle(30000);
    await waitFor(inboxSettled(stack), 'PSP events applied', 20000);

    // Each order's first event is retried with backoff, and nothing after it goes out meanwhile.
    const listed = await waitFor(async () => {
      const rows = (await request(stack.url).get('/admin/order-events?status=pending').set(stack.admin).expect(200)).body.data as Array<{
        sequence: number;
        deliveries: Array<{ attempts: number; lastAnswer: number | null; lastError: string | null; nextAttemptAt: string | null }>;
      }>;
      const first = rows.filter((r) => r.sequence === 1);
      return first.length === orders.length && first.every((r) => r.deliveries[0]!.attempts >= 3) ? rows : null;
    }, 'every first event retried a few times', 30000);
    expect(listed!.filter((r) => r.sequence === 1).some((r) => r.deliveries[0]!.lastAnswer === 500)).toBe(true);
    expect(listed!.every((r) => r.deliveries[0]!.nextAttemptAt !== null)).toBe(true);
    expect(receiver.received.every((r) => r.sequence === 1)).toBe(true);
    const timeouts = (await request(stack.url).get('/metrics').set(stack.admin).expect(200)).text;
    expect(timeouts).toMatch(/settle_order_event_delivery_attempts_total\{result="timeout"\} [1-9]/);
    expect(timeouts).toMatch(/settle_order_event_deliveries\{state="pending"\} [1-9]/);

    receiver.answer = () => ({ status: 200 });
    await waitFor(async () => (await undelivered(stack)) === 0, 'every event delivered once the endpoint answers', 30000);

    expect(receiver.badSignatures).toEqual([]);
    expect(receiver.overlaps).toEqual([]);
    expect(sentBeforePredecessorAccepted(receiver.received)).toEqual([]);
    for (const id of orders) {
      const view = (await request(stack.url).get(`/orders/${id}`).expect(200)).body;
      expect(view.history.at(-1)?.to).toBe('paid');
      expect(sequenceProblems(receiver.acceptedFor(id), view.history)).toBeNull();
    }
    const metrics = (await request(stack.url).get('/metrics').set(stack.admin).expect(200)).text;
    expect(metrics).toMatch(/settle_order_event_delivery_attempts_total\{result="http_error"\} [1-9]/);
    expect(metrics).toMatch(/settle_order_event_delivery_seconds_count [1-9]/);
    expect(metrics).toMatch(/settle_order_event_deliveries\{state="pending"\} 0/);
  });
});

describe('Order events: an endpoint that never answers 2xx within the retry window', () => {
  let stack: TestStack;
  let receiver: OrderEventReceiver;

  beforeAll(async () => {
    receiver = await OrderEventReceiver.start();
    stack = await startTestStack({
      env: { ORDER_EVENTS_URL: receiver.url, ORDER_EVENTS_SECRET: ORDER_EVENTS_TEST_SECRET, ORDER_EVENTS_RETRY_BASE_MS: '50', ORDER_EVENTS_GIVE_UP_AFTER_MS: '500' },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await receiver?.stop();
  });

  it('marks the event failed, holds the order\'s later events, and an operator redelivers it', async () => {
    receiver.answer = () => ({ status: 503 });
    // Two changes for certain: the decline is applied before the card that pays is used.
    const order = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body;
    const orderId = order.id as string;
    await stack.stripe.paymentIntents.confirm(order.payment.id, { payment_method: 'pm_card_chargeDeclined' }).catch(() => undefined);
    await waitFor(async () => (await request(stack.url).get(`/orders/${orderId}`)).body.status === 'payment_failed', 'the decline applied', 20000);
    await stack.stripe.paymentIntents.confirm(order.payment.id, { payment_method: 'pm_card_visa' });
    await waitFor(async () => (await request(stack.url).get(`/orders/${orderId}`)).body.status === 'paid', 'the payment applied', 20000);

    const failed = await waitFor(async () => {
      const rows = (await request(stack.url).get(`/admin/order-events?status=failed&orderId=${orderId}`).set(stack.admin).expect(200)).body.data;
      return rows.length > 0 ? rows : null;
    }, 'the first event failed', 20000);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ orderId, sequence: 1, type: 'order.payment_failed' });
    expect(failed[0].deliveries[0]).toMatchObject({ status: 'failed', lastAnswer: 503, nextAttemptAt: null });
    expect(failed[0].deliveries[0].attempts).toBeGreaterThan(1);
    expect((await request(stack.url).get('/metrics').set(stack.admin).expect(200)).text).toMatch(/settle_order_event_deliveries\{state="failed"\} 1/);
    // order.paid waits behind the failed event: it was never sent.
    const held = (await request(stack.url).get(`/admin/order-events?status=pending&orderId=${orderId}`).set(stack.admin).expect(200)).body.data;
    expect(held.map((e: { sequence: number }) => e.sequence)).toEqual([2]);
    expect(receiver.received.some((r) => r.sequence === 2)).toBe(false);

    receiver.answer = () => ({ status: 204 });
    const redelivered = await request(stack.url).post(`/admin/order-events/${failed[0].id}/redeliver`).set(stack.admin).expect(202);
    expect(redelivered.body).toEqual({ id: failed[0].id, endpoints: [receiver.url] });
    await waitFor(async () => (await undelivered(stack)) === 0, 'both events delivered after the redelivery', 20000);
    expect(receiver.acceptedFor(orderId).map((e) => e.type)).toEqual(['order.payment_failed', 'order.paid']);
    expect(receiver.badSignatures).toEqual([]);
  });
});

describe('Order events: Redis down', () => {
  let stack: TestStack;
  let receiver: OrderEventReceiver;
  let redis: TestRedis;

  beforeAll(async () => {
    receiver = await OrderEventReceiver.start();
    redis = await TestRedis.start();
    stack = await startTestStack({
      env: { REDIS_URL: redis.url, ORDER_EVENTS_URL: receiver.url, ORDER_EVENTS_SECRET: ORDER_EVENTS_TEST_SECRET, ORDER_EVENTS_RETRY_BASE_MS: '50' },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await redis?.down();
    await receiver?.stop();
  });

  it('delivers what is in the outbox while Redis is down: it only ever reads PostgreSQL', async () => {
    receiver.answer = () => ({ status: 500 });
    const orders = await paidOrders(stack, 3, 'success');
    await stack.mock.idle(30000);
    await waitFor(inboxSettled(stack), 'PSP events applied', 20000);
    const canceled = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body;

    await redis.down();
    // A change made while Redis is down goes out too.
    await request(stack.url).post(`/orders/${canceled.id}/cancel`).set(stack.admin).expect(200);
    receiver.answer = () => ({ status: 200 });
    await waitFor(async () => (await undelivered(stack)) === 0, 'every event delivered with Redis down', 20000);
    expect(receiver.accepted().map((r) => r.type).sort()).toEqual(['order.canceled', 'order.paid', 'order.paid', 'order.paid']);
    expect(new Set(receiver.accepted().map((r) => r.data.id))).toEqual(new Set([...orders, canceled.id]));

    // Back up, so the queue's connections recover before the app is closed.
    await redis.up();
    await waitFor(async () => (await request(stack.url).get('/health')).status === 200, 'Redis healthy again', 20000);
  });
});
