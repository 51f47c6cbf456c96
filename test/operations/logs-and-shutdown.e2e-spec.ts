import request from 'supertest';
import { ChildStack, startChildStack, TEST_ADMIN_KEY, TEST_WEBHOOK_SECRET } from '../support/child-stack';
import { orderBody } from '../support/test-app';
import { waitFor } from '../support/wait';

/** Every JSON line the app printed (pino writes one object per line). */
function jsonLines(output: string): Array<Record<string, unknown>> {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('Structured logs (the compiled app as a process, at LOG_LEVEL=debug)', () => {
  let stack: ChildStack;

  beforeAll(async () => {
    stack = await startChildStack({ env: { LOG_LEVEL: 'debug' } });
  });
  afterAll(() => stack.stop());

  it('carry the request id, the event id and the order id, and never a secret, client secret or signature', async () => {
    const created = await request(stack.url).post('/orders').set('X-Request-Id', 'req-log-test-1').send(orderBody()).expect(201);
    expect(created.headers['x-request-id']).toBe('req-log-test-1');
    const order = created.body as { id: string; payment: { id: string; clientSecret: string } };
    await stack.stripe.paymentIntents.confirm(order.payment.id, { payment_method: 'pm_card_visa' });
    await stack.mock.idle();
    await waitFor(async () => (await request(stack.url).get(`/orders/${order.id}`)).body.status === 'paid', 'the order to be paid');
    // Requests that carry the admin key and a signed webhook with a bad signature, so both headers pass through the logger.
    await request(stack.url).post(`/orders/${order.id}/refunds`).set('Authorization', `Bearer ${TEST_ADMIN_KEY}`).send({ amount: 100 }).expect(201);
    await request(stack.url).post('/webhooks/stripe').set('Stripe-Signature', 't=1,v1=deadbeef').set('Content-Type', 'application/json').send('{"id":"evt_x"}').expect(400);
    await waitFor(async () => stack.apps[0].output.includes('webhook refused'), 'the rejected webhook to be logged');

    const output = stack.apps[0].output;
    const lines = jsonLines(output);
    expect(lines.length).toBeGreaterThan(3);
    const requestLine = lines.find((l) => (l.req as { id?: string } | undefined)?.id === 'req-log-test-1');
    expect(requestLine).toMatchObject({ req: { method: 'POST', url: '/orders' }, res: { statusCode: 201 } });
    const refused = lines.find((l) => l.msg === 'webhook refused');
    expect(refused).toMatchObject({ status: 400, requestId: expect.any(String) });
    const applied = lines.find((l) => typeof l.eventId === 'string' && l.orderId === order.id);
    expect(applied).toBeDefined();
    expect(applied?.eventId).toMatch(/^evt_/);

    for (const secret of [TEST_ADMIN_KEY, TEST_WEBHOOK_SECRET, 'sk_test_settle', order.payment.clientSecret, 'v1=deadbeef', '_secret_']) {
      expect(output).not.toContain(secret);
    }
  });
});

describe('Graceful shutdown under load', () => {
  let stack: ChildStack;

  beforeAll(async () => {
    // The mock delivers to the first instance; a second one takes over when the first stops. Its
    // latency keeps an order creation inside the app (waiting on the PSP) long enough to be in flight.
    stack = await startChildStack({ mock: { latencyMs: 100 } });
  });
  afterAll(() => stack.stop());

  it('on SIGTERM finishes in-flight requests and jobs; every payment still settles exactly once', async () => {
    const orders: Array<{ id: string; payment: { id: string } }> = [];
    for (let i = 0; i < 30; i++) orders.push((await request(stack.url).post('/orders').send(orderBody()).expect(201)).body);
    const second = await stack.startApp();

    // Payments succeed while the first instance is told to stop: requests in flight and queued jobs must not be lost.
    const confirming = Promise.all(orders.map((o) => stack.stripe.paymentIntents.confirm(o.payment.id, { payment_method: 'pm_card_visa' })));
    await new Promise((r) => setTimeout(r, 50));
    const lateEmail = 'late-during-shutdown@example.com';
    const intentCreates = () => stack.mock.stats().byRoute['POST /v1/payment_intents'] ?? 0;
    const createsBefore = intentCreates();
    const orderCreates = Promise.allSettled(Array.from({ length: 10 }, () => request(stack.url).post('/orders').send(orderBody({ customerEmail: lateEmail }))));
    // Stop only once some of them are inside the app (creating their PaymentIntent), so they are really in flight.
    await waitFor(async () => intentCreates() > createsBefore, 'a late order creation to reach the PSP', 10_000, 2);
    const exit = await stack.apps[0].stop('SIGTERM');
    expect(exit).toBe(0);
    await confirming;
    // A request the stopping instance took was answered in full: every order it created got its 201. Requests
    // it never took (refused, or reset while still in the kernel's accept queue) created nothing.
    const results = await orderCreates;
    const answered = results.filter((r) => r.status === 'fulfilled');
    expect(answered.length).toBeGreaterThan(0);
    for (const r of answered) expect(r.value.status).toBe(201);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as { code?: string }).code).toMatch(/ECONNREFUSED|ECONNRESET/);
    const late = await stack.db.query(`SELECT count(*)::int AS n FROM orders WHERE customer_email = $1`, [lateEmail]);
    expect(late.rows[0].n).toBe(answered.length);
    // Whatever the mock could not deliver to the stopped instance it retries; point it at the one still running.
    stack.mock.setForwardTo(`${second.url}/webhooks/stripe`);
    await stack.mock.idle(30_000);

    await waitFor(async () => {
      const { rows } = await stack.db.query(`SELECT count(*)::int AS n FROM orders WHERE id = ANY($1) AND status = 'paid'`, [orders.map((o) => o.id)]);
      return rows[0].n === orders.length;
    }, 'every order to be paid', 30_000);
    const history = await stack.db.query(
      `SELECT order_id, count(*)::int AS n FROM order_status_history WHERE order_id = ANY($1) AND to_status = 'paid' GROUP BY order_id`,
      [orders.map((o) => o.id)],
    );
    expect(history.rows).toHaveLength(orders.length);
    expect(history.rows.every((r: { n: number }) => r.n === 1)).toBe(true);
    // Every stored event is applied too, not only each order's payment: an order is paid by its first
    // applied success, while its other events (another intake batch's job) may still be on their way.
    const unapplied = async () =>
      (await stack.db.query(`SELECT id, type, status, attempts, job_id, received_at FROM webhook_events WHERE status NOT IN ('processed', 'ignored')`)).rows;
    await waitFor(async () => (await unapplied()).length === 0, 'every stored event applied', 20_000).catch(() => undefined);
    // Named, if any is left: which events, and the job that should have carried them.
    expect(await unapplied()).toEqual([]);
  });
});
