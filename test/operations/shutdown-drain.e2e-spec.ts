import Bull from 'bull';
import { Client } from 'pg';
import { ChildStack, signedHeader, startChildStack } from '../support/child-stack';
import { orderBody } from '../support/test-app';
import { testRedisUrl } from '../support/services';
import { waitFor } from '../support/wait';
import { eventsInJobs } from '../support/queue-jobs';
import { WEBHOOK_QUEUE } from '../../src/webhooks/webhook-queue';

/**
 * SIGTERM on `npm run start:prod` (dist/main.js, real PostgreSQL and Redis):
 * /health/ready fails first, the listener stays for SHUTDOWN_DRAIN_MS, and a
 * job running at SIGTERM is finished by this process before it exits (not
 * left to another process's stalled-job recovery). The job is held inside
 * its transaction by a row lock the test takes on the order.
 */
describe('shutdown drain: readiness first, then the listener, then the running jobs, then exit', () => {
  let stack: ChildStack;
  let locker: Client;
  let queue: Bull.Queue;

  async function start(env: Record<string, string>): Promise<void> {
    stack = await startChildStack({ forwardWebhooks: false, env });
    locker = new Client({ connectionString: stack.databaseUrl });
    await locker.connect();
    queue = new Bull(WEBHOOK_QUEUE, testRedisUrl(), { prefix: stack.env.QUEUE_PREFIX });
  }
  afterEach(async () => {
    if (!stack) return;
    await locker.query('ROLLBACK').catch(() => undefined);
    await locker.end().catch(() => undefined);
    await queue.close();
    await stack.stop();
  });

  /** An order, its payment_intent.succeeded delivered and acknowledged, and its job blocked on the order row the test holds. */
  async function jobBlockedOnOrderLock(): Promise<{ orderId: string; eventId: string }> {
    const created = await fetch(`${stack.url}/orders`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(orderBody()) });
    expect(created.status).toBe(201);
    const order = (await created.json()) as { id: string; amount: number; currency: string; payment: { id: string } };
    await locker.query('BEGIN');
    await locker.query('SELECT id FROM orders WHERE id = $1 FOR UPDATE', [order.id]);

    const eventId = `evt_drain_${order.id.slice(0, 8)}`;
    const payload = JSON.stringify({
      id: eventId,
      object: 'event',
      type: 'payment_intent.succeeded',
      created: Math.floor(Date.now() / 1000),
      livemode: false,
      data: { object: { id: order.payment.id, object: 'payment_intent', amount: order.amount, amount_received: order.amount, currency: order.currency, status: 'succeeded', metadata: { order_id: order.id } } },
    });
    const ack = await fetch(`${stack.url}/webhooks/stripe`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Stripe-Signature': signedHeader(payload) }, body: payload });
    expect(ack.status).toBe(200);
    // The processor's transaction is inside the job, waiting for the test's lock.
    await waitFor(
      async () => {
        const { rows } = await stack.db.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
        return rows[0].n > 0;
      },
      'the job to wait on the order lock',
    );
    expect(await eventsInJobs(queue, ['active'])).toEqual([eventId]);
    return { orderId: order.id, eventId };
  }

  it('a job running at SIGTERM is finished by the same process before it exits; /health/ready fails during the drain', async () => {
    await start({ SHUTDOWN_DRAIN_MS: '1500' });
    const app = stack.apps[0]!;
    const { orderId, eventId } = await jobBlockedOnOrderLock();

    app.signal('SIGTERM');
    const exited = app.exited();
    // Draining: not ready (so a balancer stops sending), still alive and still answering.
    await waitFor(async () => (await fetch(`${stack.url}/health/ready`)).status === 503, '/health/ready to fail', 1000, 20);
    const ready = (await (await fetch(`${stack.url}/health/ready`)).json()) as { error: Record<string, { status: string; message?: string }> };
    // /health shows states only (no text: see statesOnly in health.controller.ts); the shutdown check is what is down.
    expect(ready.error.shutdown).toMatchObject({ status: 'down' });
    expect((await fetch(`${stack.url}/health`)).status).toBe(200);

    // After the drain the listener is closed while the job is still held.
    await waitFor(async () => fetch(`${stack.url}/health`).then(() => false, () => true), 'the listener to close', 5000, 50);
    expect(await eventsInJobs(queue, ['active'])).toEqual([eventId]);
    const { rows: before } = await stack.db.query(`SELECT status FROM webhook_events WHERE id = $1`, [eventId]);
    expect(before[0].status).not.toBe('processed');

    await locker.query('COMMIT');
    expect(await exited).toBe(0);

    // Nothing else runs against this database and queue: what is applied now was applied by that process.
    const { rows } = await stack.db.query(`SELECT status FROM webhook_events WHERE id = $1`, [eventId]);
    expect(rows[0].status).toBe('processed');
    const { rows: orders } = await stack.db.query(`SELECT status FROM orders WHERE id = $1`, [orderId]);
    expect(orders[0].status).toBe('paid');
    // Completed (removed on completion), not left active for stalled-job recovery.
    expect(await queue.getActive()).toEqual([]);
    expect(await eventsInJobs(queue, ['waiting', 'active', 'delayed', 'failed', 'completed', 'paused'])).not.toContain(eventId);
  }, 60000);

  it('a job that outlives SHUTDOWN_TIMEOUT_MS is cut off: exit 1 with one line naming it, and the event stays stored for a retry', async () => {
    await start({ SHUTDOWN_DRAIN_MS: '0', SHUTDOWN_TIMEOUT_MS: '1500' });
    const app = stack.apps[0]!;
    const { eventId } = await jobBlockedOnOrderLock();

    const began = Date.now();
    expect(await app.stop('SIGTERM')).toBe(1);
    expect(Date.now() - began).toBeLessThan(1500 + 3000);
    expect(app.output).toMatch(new RegExp(`Shutdown cut short \\(SHUTDOWN_TIMEOUT_MS 1500 ms passed\\) while finishing in-flight work: cut off 0 HTTP request\\(s\\), 1 queue job\\(s\\) \\(${eventId}\\); exiting 1`));
    await locker.query('ROLLBACK');
    const { rows } = await stack.db.query(`SELECT status FROM webhook_events WHERE id = $1`, [eventId]);
    expect(rows[0].status).toBe('received');
  }, 60000);
});
