import Bull from 'bull';
import request from 'supertest';
import { ChildStack, startChildStack } from '../support/child-stack';
import { eventsInJobs } from '../support/queue-jobs';
import { testRedisUrl } from '../support/services';
import { orderBody } from '../support/test-app';
import { waitFor } from '../support/wait';
import { WEBHOOK_QUEUE } from '../../src/webhooks/webhook-queue';

/**
 * APP_ROLE splits the process: `api` takes HTTP (orders, webhooks into the
 * inbox and the queue) and applies nothing; `worker` serves no HTTP and
 * applies what the queue holds. Together they behave as one `all` process.
 */
describe('APP_ROLE=api and APP_ROLE=worker processes on one database and queue', () => {
  let stack: ChildStack;

  beforeAll(async () => {
    stack = await startChildStack({ env: { APP_ROLE: 'api' } });
  });
  afterAll(() => stack.stop());

  it('the api process stores and queues events but applies none; a worker applies them', async () => {
    const orders: Array<{ id: string; payment: { id: string } }> = [];
    for (let i = 0; i < 5; i++) orders.push((await request(stack.url).post('/orders').send(orderBody()).expect(201)).body);
    for (const o of orders) await stack.stripe.paymentIntents.confirm(o.payment.id, { payment_method: 'pm_card_visa' });
    await stack.mock.idle();

    const { rows: stored } = await stack.db.query(`SELECT id, status FROM webhook_events`);
    expect(stored).toHaveLength(15);
    expect(stored.every((r: { status: string }) => r.status === 'received')).toBe(true);
    // Queued: every stored event is carried by a job waiting for a worker.
    const queue = new Bull(WEBHOOK_QUEUE, testRedisUrl(), { prefix: stack.env.QUEUE_PREFIX });
    try {
      expect((await eventsInJobs(queue, ['waiting'])).sort()).toEqual(stored.map((r: { id: string }) => r.id).sort());
    } finally {
      await queue.close();
    }
    await new Promise((r) => setTimeout(r, 500));
    for (const o of orders) expect((await request(stack.url).get(`/orders/${o.id}`)).body.status).toBe('pending_payment');

    const worker = await stack.startApp({ APP_ROLE: 'worker' });
    expect(worker.url).toBe('');
    await waitFor(async () => {
      const { rows } = await stack.db.query(`SELECT count(*)::int AS n FROM orders WHERE status = 'paid'`);
      return rows[0].n === orders.length;
    }, 'the worker to pay every order', 20_000);
    const { rows: history } = await stack.db.query(`SELECT count(*)::int AS n FROM order_status_history WHERE to_status = 'paid'`);
    expect(history[0].n).toBe(orders.length);
    // The worker serves no HTTP: nothing but its start line names a URL.
    expect(worker.output).not.toMatch(/listening on/);
  });
});
