import Bull from 'bull';
import request from 'supertest';
import { ChildStack, signedHeader, startChildStack } from '../support/child-stack';
import { TestRedis } from '../support/redis-server';
import { historyProblems } from '../support/psp-flows';
import { eventsInJobs } from '../support/queue-jobs';
import { waitFor } from '../support/wait';
import { WEBHOOK_QUEUE } from '../../src/webhooks/webhook-queue';

const ORDER = { currency: 'usd', items: [{ sku: 'A', name: 'A', unitAmount: 1500, quantity: 1 }], customerEmail: 'r@example.com' };

async function createOrders(url: string, n: number): Promise<Array<{ id: string; pi: string }>> {
  const out: Array<{ id: string; pi: string }> = [];
  for (let i = 0; i < n; i++) {
    const o = (await request(url).post('/orders').send(ORDER).expect(201)).body;
    out.push({ id: o.id, pi: o.payment.id });
  }
  return out;
}

/** Every order paid with exactly one history entry, and no event stored twice. */
async function expectAllPaidOnce(stack: ChildStack, orders: Array<{ id: string }>, timeoutMs = 40000): Promise<void> {
  const ids = orders.map((o) => o.id);
  await waitFor(
    async () => Number((await stack.db.query(`SELECT count(*) AS n FROM orders WHERE id = ANY($1) AND status = 'paid'`, [ids])).rows[0].n) === ids.length,
    `${ids.length} orders paid`,
    timeoutMs,
    200,
  );
  const history = await stack.db.query(`SELECT order_id, from_status AS from, to_status AS to FROM order_status_history WHERE order_id = ANY($1) ORDER BY id`, [ids]);
  for (const id of ids) {
    const entries = history.rows.filter((h) => h.order_id === id);
    expect(entries.map((h) => h.to)).toEqual(['paid']);
    expect(historyProblems(entries)).toBeNull();
  }
}

describe('Redis stops while events arrive', () => {
  let redis: TestRedis;
  let stack: ChildStack;

  beforeAll(async () => {
    redis = await TestRedis.start();
    stack = await startChildStack({ env: { REDIS_URL: redis.url } });
  });
  afterAll(async () => {
    await stack?.stop();
    await redis?.down();
  });

  it('answers 2xx (the events are stored), and applies every one of them once Redis is back', async () => {
    const before = await createOrders(stack.url, 3);
    for (const o of before) await stack.stripe.paymentIntents.confirm(o.pi, { payment_method: 'pm_card_visa' });
    await expectAllPaidOnce(stack, before);

    await redis.down();
    const during = await createOrders(stack.url, 5);
    for (const o of during) await stack.stripe.paymentIntents.confirm(o.pi, { payment_method: 'pm_card_visa' });
    await stack.mock.idle(20000);
    // Stored, acknowledged (the mock has nothing left to retry), waiting for the queue.
    const waiting = await stack.db.query(`SELECT count(*) AS n FROM webhook_events WHERE status = 'received'`);
    expect(Number(waiting.rows[0].n)).toBeGreaterThan(0);
    const undelivered = stack.mock.events().filter((e) => stack.mock.deliveryState(e.id)?.delivered === false);
    expect(undelivered).toEqual([]);

    await redis.up();
    await expectAllPaidOnce(stack, [...before, ...during]);
  }, 90000);
});

describe('Redis hangs (its connections open, nothing answered) while events arrive', () => {
  let redis: TestRedis;
  let stack: ChildStack;

  beforeAll(async () => {
    redis = await TestRedis.start();
    stack = await startChildStack({ env: { REDIS_URL: redis.url }, forwardWebhooks: false });
  });
  afterAll(async () => {
    redis?.thaw();
    await stack?.stop();
    await redis?.down();
  });

  it('answers once the event is stored, without waiting for Redis, and applies it once Redis answers again', async () => {
    const [order] = await createOrders(stack.url, 1);
    await stack.stripe.paymentIntents.confirm(order!.pi, { payment_method: 'pm_card_visa' });
    const event = stack.mock.events().find((e) => e.type === 'payment_intent.succeeded' && (e.data.object as { id: string }).id === order!.pi)!;
    const payload = JSON.stringify(event);

    redis.freeze();
    try {
      const sentAt = Date.now();
      const res = await request(stack.url).post('/webhooks/stripe').set('Content-Type', 'application/json').set('Stripe-Signature', signedHeader(payload, { secret: stack.mock.webhookSecret })).send(payload);
      const answeredAfterMs = Date.now() - sentAt;
      expect(res.status).toBe(200);
      // A job add waits up to 1.5 s for Redis before leaving the job to the relay; the answer must not be held for it.
      expect(answeredAfterMs).toBeLessThan(1000);
      const stored = await stack.db.query(`SELECT status FROM webhook_events WHERE id = $1`, [event.id]);
      expect(stored.rows).toEqual([{ status: 'received' }]);
    } finally {
      redis.thaw();
    }
    await expectAllPaidOnce(stack, [order!]);
  }, 90000);
});

describe('the app is killed with SIGKILL mid-stream', () => {
  let stack: ChildStack;

  beforeAll(async () => {
    // Retries on Stripe's own schedule (1 s, 2 s, 4 s …), so they outlast the restart.
    stack = await startChildStack({ mock: { timeScale: 1 } });
  });
  afterAll(async () => stack?.stop());

  it('loses and doubles nothing once it is back', async () => {
    const orders = await createOrders(stack.url, 12);
    const port = new URL(stack.url).port;
    const paying = Promise.all(orders.map((o) => stack.stripe.paymentIntents.confirm(o.pi, { payment_method: 'pm_card_visa' })));
    await new Promise((r) => setTimeout(r, 30));
    expect(await stack.apps[0]!.stop('SIGKILL')).toBe('SIGKILL');
    await paying;
    // The PSP keeps retrying the deliveries that failed meanwhile; the new process takes the same port.
    const revived = await stack.startApp({ PORT: port });
    stack.mock.setForwardTo(`${revived.url}/webhooks/stripe`);
    await expectAllPaidOnce(stack, orders, 60000);
    // Everything the PSP saw acknowledged was applied: stored before the 2xx, queued or relayed after the crash.
    await stack.mock.idle(30000);
    // The kill really landed mid-stream: some deliveries had to be retried.
    expect(stack.mock.events().some((e) => (stack.mock.deliveryState(e.id)?.attempts ?? 0) > 1)).toBe(true);
    const delivered = stack.mock.events().filter((e) => stack.mock.deliveryState(e.id)?.delivered).map((e) => e.id);
    await waitFor(
      async () => Number((await stack.db.query(`SELECT count(*) AS n FROM webhook_events WHERE id = ANY($1) AND status IN ('processed', 'ignored')`, [delivered])).rows[0].n) === delivered.length,
      'every acknowledged event applied',
      30000,
      200,
    );
  }, 90000);
});

describe('two instances receive the same events', () => {
  let stack: ChildStack;

  beforeAll(async () => {
    stack = await startChildStack({ forwardWebhooks: false });
    await stack.startApp();
  });
  afterAll(async () => stack?.stop());

  it('apply each event once', async () => {
    const orders = await createOrders(stack.url, 6);
    const from = stack.mock.events().length;
    for (const o of orders) await stack.stripe.paymentIntents.confirm(o.pi, { payment_method: 'pm_card_visa' });
    const events = stack.mock.events().slice(from);
    const sends = events.flatMap((event) => {
      const payload = JSON.stringify(event);
      return stack.apps.flatMap((app) =>
        [0, 1].map(() => request(app.url).post('/webhooks/stripe').set('Content-Type', 'application/json').set('Stripe-Signature', signedHeader(payload)).send(payload)),
      );
    });
    const statuses = (await Promise.all(sends)).map((r) => r.status);
    expect(new Set(statuses)).toEqual(new Set([200]));
    await expectAllPaidOnce(stack, orders);
  }, 60000);
});

describe('Redis restarts empty while events are queued but not applied', () => {
  let redis: TestRedis;
  let stack: ChildStack;

  beforeAll(async () => {
    redis = await TestRedis.start();
    // An api process stores and queues events; no worker runs until Redis has forgotten them.
    stack = await startChildStack({ env: { REDIS_URL: redis.url, APP_ROLE: 'api' } });
  });
  afterAll(async () => {
    await stack?.stop();
    await redis?.down();
  });

  it('the relay queues them again and each is applied once', async () => {
    const orders = await createOrders(stack.url, 5);
    const from = stack.mock.events().length;
    for (const o of orders) await stack.stripe.paymentIntents.confirm(o.pi, { payment_method: 'pm_card_visa' });
    await stack.mock.idle(20000);
    const events = stack.mock.events().slice(from).map((e) => e.id);
    const before = new Bull(WEBHOOK_QUEUE, redis.url, { prefix: stack.env.QUEUE_PREFIX });
    try {
      await waitFor(
        async () =>
          Number((await stack.db.query(`SELECT count(*) AS n FROM webhook_events WHERE id = ANY($1)`, [events])).rows[0].n) === events.length &&
          (await eventsInJobs(before, ['waiting'])).filter((id) => events.includes(id)).length === events.length,
        'every event stored and queued',
      );
    } finally {
      await before.close();
    }

    // No persistence: the restarted Redis holds no job at all.
    await redis.down();
    await redis.up();
    const queue = new Bull(WEBHOOK_QUEUE, redis.url, { prefix: stack.env.QUEUE_PREFIX });
    try {
      const counts = await queue.getJobCounts();
      expect(counts.waiting + counts.active + counts.delayed + counts.failed + counts.completed).toBe(0);
    } finally {
      await queue.close();
    }

    await stack.startApp({ APP_ROLE: 'worker' });
    await expectAllPaidOnce(stack, orders, 60000);
    // Each order is paid by its first applied success; its other events (another intake batch's job) may still be on their way.
    const applied = async () => Number((await stack.db.query(`SELECT count(*) AS n FROM webhook_events WHERE id = ANY($1) AND status IN ('processed', 'ignored')`, [events])).rows[0].n);
    await waitFor(async () => (await applied()) === events.length, 'every event applied', 20_000).catch(() => undefined);
    expect(await applied()).toBe(events.length);
  }, 90000);
});
