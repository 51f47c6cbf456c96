import Bull from 'bull';
import { Client } from 'pg';
import request from 'supertest';
import Stripe from 'stripe';
import { MockPsp } from '../../src/mock-psp';
import { WEBHOOK_QUEUE } from '../../src/webhooks/webhook-queue';
import { ChildApp } from '../support/child-app';
import { signedHeader } from '../support/child-stack';
import { PrivatePostgres } from '../support/private-postgres';
import { historyProblems } from '../support/psp-flows';
import { eventsInJobs } from '../support/queue-jobs';
import { TEST_WEBHOOK_SECRET, testAppEnv, testRedisUrl } from '../support/services';
import { orderBody } from '../support/test-app';
import { waitFor } from '../support/wait';

/** Runs one query on a short-lived connection (the server under test goes away and comes back). */
async function query<T extends Record<string, unknown>>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

const contains = (all: string[], some: string[]) => some.every((id) => all.includes(id));

describe('PostgreSQL stops during webhook traffic and comes back', () => {
  let pg: PrivatePostgres;
  let mock: MockPsp;
  let app: ChildApp;
  let stripe: Stripe;
  let queue: Bull.Queue;
  let env: Record<string, string>;

  beforeAll(async () => {
    pg = await PrivatePostgres.start();
    // Half of Stripe's retry schedule (0.5, 1, 2, 4, 8, 16, 32 s): retries outlast a 20 s outage.
    mock = await MockPsp.start({ port: 0, webhookSecret: TEST_WEBHOOK_SECRET, timeScale: 0.5 });
    env = testAppEnv(pg.url, mock.url);
    app = await ChildApp.start(env);
    mock.setForwardTo(`${app.url}/webhooks/stripe`);
    stripe = new Stripe('sk_test_settle', { host: '127.0.0.1', port: mock.port, protocol: 'http', telemetry: false });
    // The test's own handle on the app's queue, to hold jobs back until the database is gone.
    queue = new Bull(WEBHOOK_QUEUE, testRedisUrl(), { prefix: env.QUEUE_PREFIX });
  }, 60000);

  afterAll(async () => {
    mock?.setForwardTo(undefined);
    await app?.stop('SIGTERM');
    await queue?.close();
    await mock?.stop();
    await pg?.destroy();
  }, 60000);

  async function createOrders(n: number): Promise<Array<{ id: string; pi: string }>> {
    const out: Array<{ id: string; pi: string }> = [];
    for (let i = 0; i < n; i++) {
      const order = (await request(app.url).post('/orders').send(orderBody()).expect(201)).body;
      out.push({ id: order.id, pi: order.payment.id });
    }
    return out;
  }

  it('answers 5xx (never 2xx) while it is down, then applies every event once without a restart', async () => {
    // Jobs of these orders wait in a paused queue, so they run while the database is down.
    const held = await createOrders(4);
    await queue.pause();
    const heldFrom = mock.events().length;
    for (const o of held) await stripe.paymentIntents.confirm(o.pi, { payment_method: 'pm_card_visa' });
    await mock.idle(20000);
    const heldEvents = mock.events().slice(heldFrom).map((e) => e.id);
    await waitFor(
      async () =>
        (await query<{ n: string }>(pg.url, `SELECT count(*) AS n FROM webhook_events WHERE id = ANY($1)`, [heldEvents]))[0]?.n === String(heldEvents.length) &&
        contains(await eventsInJobs(queue, ['waiting', 'paused']), heldEvents),
      'held events stored and queued',
    );
    const during = await createOrders(5);

    await pg.down();
    const downAt = Date.now();
    await queue.resume();

    // The PSP's deliveries meet a database that is not there.
    const duringFrom = mock.events().length;
    for (const o of during) await stripe.paymentIntents.confirm(o.pi, { payment_method: 'pm_card_visa' });
    const duringEvents = mock.events().slice(duringFrom);
    expect(duringEvents.length).toBeGreaterThan(0);

    // Our own deliveries while it is down: each one a 5xx.
    const direct = await Promise.all(
      duringEvents.map((event) => {
        const payload = JSON.stringify(event);
        return request(app.url).post('/webhooks/stripe').set('Content-Type', 'application/json').set('Stripe-Signature', signedHeader(payload)).send(payload);
      }),
    );
    for (const res of direct) expect(res.status).toBeGreaterThanOrEqual(500);

    const health = await request(app.url).get('/health');
    expect(health.status).toBe(503);
    expect(health.body.error).toHaveProperty('postgres');
    expect(health.body.error.postgres.status).toBe('down');

    const refused = await request(app.url).post('/orders').send(orderBody());
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ statusCode: 503, error: 'Service Unavailable' });
    expect(refused.body.message).toMatch(/database/i);

    // The held jobs fail every attempt (1+2+4+8 s of backoff) while the worker cannot even mark them dead.
    await waitFor(async () => contains(await eventsInJobs(queue, ['failed']), heldEvents), 'held jobs failed for good', 30000, 200);
    // Keep it down past the first retries of the PSP too.
    await new Promise((r) => setTimeout(r, Math.max(0, 18000 - (Date.now() - downAt))));
    for (const event of duringEvents) {
      const state = mock.deliveryState(event.id);
      expect(state?.delivered).toBe(false);
      expect(state?.attempts).toBeGreaterThan(1);
    }

    await pg.up();

    // The same process: health, orders and every event come back.
    await waitFor(async () => (await request(app.url).get('/health')).status === 200, '/health 200 again', 20000, 200);
    const after = await createOrders(1);
    await stripe.paymentIntents.confirm(after[0]!.pi, { payment_method: 'pm_card_visa' });

    const orders = [...held, ...during, ...after].map((o) => o.id);
    await waitFor(
      async () => (await query<{ n: string }>(pg.url, `SELECT count(*) AS n FROM orders WHERE id = ANY($1) AND status = 'paid'`, [orders]))[0]?.n === String(orders.length),
      `${orders.length} orders paid`,
      90000,
      500,
    );
    await mock.idle(60000);
    for (const event of mock.events()) expect(mock.deliveryState(event.id)?.delivered).toBe(true);
    const history = await query<{ order_id: string; from: string; to: string }>(
      pg.url,
      `SELECT order_id, from_status AS from, to_status AS to FROM order_status_history WHERE order_id = ANY($1) ORDER BY id`,
      [orders],
    );
    for (const id of orders) {
      const entries = history.filter((h) => h.order_id === id);
      expect(entries.map((h) => h.to)).toEqual(['paid']);
      expect(historyProblems(entries)).toBeNull();
    }
    // Each order is paid by its first applied success; its other events (another intake batch's job) may still be on their way.
    const open = () => query<{ id: string; status: string }>(pg.url, `SELECT id, status FROM webhook_events WHERE status NOT IN ('processed', 'ignored')`);
    await waitFor(async () => (await open()).length === 0, 'every stored event applied', 20_000).catch(() => undefined);
    expect(await open()).toEqual([]);
  }, 180000);
});
