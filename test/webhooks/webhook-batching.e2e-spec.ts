import { getQueueToken } from '@nestjs/bull';
import type { Queue } from 'bull';
import request from 'supertest';
import { WebhookInbox } from '../../src/webhooks/webhook-inbox.service';
import { WEBHOOK_QUEUE, WebhookJob } from '../../src/webhooks/webhook-queue';
import { signedHeader } from '../support/child-stack';
import { orderBody, startTestStack, TestStack } from '../support/test-app';
import { waitFor } from '../support/wait';

/**
 * Under a burst the processor applies events in batches (one transaction for
 * many): the batches must give exactly what one-by-one application gives.
 */
describe('a burst of events is applied in batches, each transition once', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack({ forwardWebhooks: false });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  function metric(text: string, name: string): number {
    const match = new RegExp(`^${name} (\\d+(?:\\.\\d+)?)$`, 'm').exec(text);
    return match ? Number(match[1]) : 0;
  }

  it('pays 60 orders from their events delivered all at once (some twice), with batches larger than one', async () => {
    const before = (await request(stack.url).get('/metrics').set(stack.admin)).text;
    const orders: Array<{ id: string; payment: { id: string } }> = [];
    for (let i = 0; i < 60; i++) orders.push((await request(stack.url).post('/orders').send(orderBody()).expect(201)).body);
    for (const o of orders) await stack.stripe.paymentIntents.confirm(o.payment.id, { payment_method: 'pm_card_visa' });
    const events = stack.mock.events().filter((e) => orders.some((o) => (e.data.object as { id?: string; payment_intent?: string }).payment_intent === o.payment.id || (e.data.object as { id?: string }).id === o.payment.id));
    expect(events.length).toBe(180);
    const deliveries = [...events, ...events.filter((_, i) => i % 7 === 0)];
    const statuses = await Promise.all(
      deliveries.map((event) => {
        const payload = JSON.stringify(event);
        const header = signedHeader(payload, { secret: stack.mock.webhookSecret });
        return request(stack.url).post('/webhooks/stripe').set('Content-Type', 'application/json').set('Stripe-Signature', header).send(payload).then((r) => r.status);
      }),
    );
    expect(statuses.every((s) => s === 200)).toBe(true);
    await waitFor(async () => {
      const { rows } = await stack.db.query(`SELECT count(*)::int AS n FROM webhook_events WHERE status IN ('processed', 'ignored')`);
      return rows[0].n === events.length;
    }, 'every event applied', 30_000);

    const paid = await stack.db.query(`SELECT count(*)::int AS n FROM orders WHERE id = ANY($1) AND status = 'paid'`, [orders.map((o) => o.id)]);
    expect(paid.rows[0].n).toBe(60);
    const history = await stack.db.query(
      `SELECT order_id, count(*)::int AS n FROM order_status_history WHERE order_id = ANY($1) GROUP BY order_id`,
      [orders.map((o) => o.id)],
    );
    // pending_payment -> paid, once per order, however the events were batched.
    expect(history.rows).toHaveLength(60);
    expect(history.rows.every((r: { n: number }) => r.n === 1)).toBe(true);

    const after = (await request(stack.url).get('/metrics').set(stack.admin)).text;
    const batches = metric(after, 'settle_event_batch_size_count') - metric(before, 'settle_event_batch_size_count');
    const applied = metric(after, 'settle_event_batch_size_sum') - metric(before, 'settle_event_batch_size_sum');
    expect(applied).toBeGreaterThanOrEqual(events.length);
    expect(batches).toBeLessThan(applied);
  });

  /** Orders confirmed at the PSP with nothing forwarded, and their payment_intent.succeeded events. */
  async function paidAtPsp(n: number): Promise<Array<{ id: string; event: { id: string; type: string; created: number } }>> {
    const out = [];
    for (let i = 0; i < n; i++) {
      const order = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body;
      await stack.stripe.paymentIntents.confirm(order.payment.id, { payment_method: 'pm_card_visa' });
      const event = stack.mock.events().find((e) => e.type === 'payment_intent.succeeded' && (e.data.object as { id: string }).id === order.payment.id)!;
      out.push({ id: order.id as string, event });
    }
    return out;
  }

  it('hands a burst to the queue as jobs of many events, each row naming the job that carries it', async () => {
    const queue = stack.app.get<Queue<WebhookJob>>(getQueueToken(WEBHOOK_QUEUE));
    const orders = await paidAtPsp(30);
    // Held in the queue while the burst comes in, to see the jobs as the intake made them.
    await queue.pause();
    try {
      const statuses = await Promise.all(
        orders.map(({ event }) => {
          const payload = JSON.stringify(event);
          return request(stack.url).post('/webhooks/stripe').set('Content-Type', 'application/json').set('Stripe-Signature', signedHeader(payload, { secret: stack.mock.webhookSecret })).send(payload).then((r) => r.status);
        }),
      );
      expect(statuses.every((s) => s === 200)).toBe(true);
      const ids = orders.map((o) => o.event.id);
      const { rows } = await stack.db.query(`SELECT id, job_id FROM webhook_events WHERE id = ANY($1)`, [ids]);
      expect(rows).toHaveLength(30);
      const byJob = new Map<string, string[]>();
      for (const r of rows as Array<{ id: string; job_id: string | null }>) byJob.set(String(r.job_id), [...(byJob.get(String(r.job_id)) ?? []), r.id]);
      // The answer comes once the rows are stored; each batch's job is added right after it, without the answer waiting for Redis.
      const jobsOfBurst = async () => (await queue.getJobs(['waiting', 'paused'])).filter((j) => j && 'ids' in j.data && j.data.ids.some((id) => ids.includes(id)));
      await waitFor(async () => (await jobsOfBurst()).reduce((n, j) => n + (j.data as { ids: string[] }).ids.length, 0) >= 30, 'every stored event in a job', 5_000, 20);
      const jobs = await jobsOfBurst();
      // Each job is one intake batch: exactly the rows that name it, and fewer jobs than events.
      expect(new Map(jobs.map((j) => [String(j.id), [...(j.data as { ids: string[] }).ids].sort()]))).toEqual(new Map([...byJob].map(([job, events]) => [job, events.sort()])));
      expect(jobs.length).toBeLessThan(30);
    } finally {
      await queue.resume();
    }
    await waitFor(async () => {
      const { rows } = await stack.db.query(`SELECT count(*)::int AS n FROM orders WHERE id = ANY($1) AND status = 'paid'`, [orders.map((o) => o.id)]);
      return rows[0].n === 30;
    }, 'every order paid', 30_000);
  });

  it('one event of a job that keeps failing fails alone: the rest of its job is applied at once and once, it is retried and ends dead', async () => {
    const orders = await paidAtPsp(3);
    const jobId = 'batch_test_one_bad';
    const bad = { id: 'evt_batch_unreadable', type: 'payment_intent.succeeded', created: Math.floor(Date.now() / 1000) };
    // Rows as the intake writes them for one batch; the unreadable payload stands in for any event that keeps failing.
    for (const row of [...orders.map((o) => ({ ...o.event, payload: JSON.stringify(o.event) })), { ...bad, payload: 'not json' }]) {
      await stack.db.query(`INSERT INTO webhook_events (id, type, payload, event_created, source, status, received_at, job_id) VALUES ($1, $2, $3, $4, 'webhook', 'received', now(), $5)`, [
        row.id, row.type, row.payload, row.created, jobId,
      ]);
    }
    expect(await stack.app.get(WebhookInbox).enqueue([{ jobId, ids: [...orders.map((o) => o.event.id), bad.id] }])).toBe(true);

    // Applied with the job's first attempt, long before its retries run out (1 + 2 + 4 + 8 s of backoff).
    await waitFor(async () => {
      const { rows } = await stack.db.query(`SELECT count(*)::int AS n FROM orders WHERE id = ANY($1) AND status = 'paid'`, [orders.map((o) => o.id)]);
      return rows[0].n === 3;
    }, 'the good events applied', 5_000, 50);
    const dead = await waitFor(async () => {
      const { rows } = await stack.db.query(`SELECT status, attempts, last_error FROM webhook_events WHERE id = $1`, [bad.id]);
      return rows[0]?.status === 'dead' ? rows[0] : null;
    }, 'the bad event dead', 40_000, 200);
    expect(dead.attempts).toBe(5);
    expect(dead.last_error).toMatch(/JSON/);
    // The job's retries found the others applied and left them alone: one attempt each, one transition each.
    const { rows: good } = await stack.db.query(`SELECT status, attempts FROM webhook_events WHERE id = ANY($1)`, [orders.map((o) => o.event.id)]);
    expect(good).toEqual([0, 1, 2].map(() => ({ status: 'processed', attempts: 1 })));
    const { rows: history } = await stack.db.query(`SELECT count(*)::int AS n FROM order_status_history WHERE order_id = ANY($1)`, [orders.map((o) => o.id)]);
    expect(history[0].n).toBe(3);
  }, 60_000);
});
