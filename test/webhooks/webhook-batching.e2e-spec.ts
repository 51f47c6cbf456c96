import request from 'supertest';
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
});
