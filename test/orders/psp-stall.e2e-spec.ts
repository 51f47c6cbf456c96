import request from 'supertest';
import { orderBody, startTestStack, TestStack } from '../support/test-app';
import { burst, Delivery, percentile, unrelatedEvent } from '../support/webhook-burst';
import { waitFor } from '../support/wait';

/** Below this, a p99 difference on a shared 2-core machine is scheduling noise, not waiting on something. */
const NOISE_FLOOR_MS = 50;
const BURST = 300;
const SENDERS = 20;

describe('A PSP that hangs on PaymentIntent creation', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack({ forwardWebhooks: false });
  });
  afterAll(async () => stack?.stop());

  const send = () => burst(stack.url, Array.from({ length: BURST }, () => unrelatedEvent()), SENDERS);
  const medianP99 = (bursts: Delivery[][]) => percentile(bursts.map((b) => percentile(b.map((d) => d.ms), 99)), 50);
  const creates = () => stack.mock.stats().byRoute['POST /v1/payment_intents'] ?? 0;
  const openTransactions = async () =>
    (await stack.db.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`)).rows[0].n;

  it('holds no connection or lock while 50 orders wait on it: a webhook burst meanwhile is acknowledged as fast, with no 5xx', async () => {
    const paid = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body;
    await send(); // warm-up
    const calm = [await send(), await send(), await send()];

    stack.mock.stallPaymentIntentCreation(20_000);
    const before = creates();
    const stalled = Array.from({ length: 50 }, () => request(stack.url).post('/orders').send(orderBody()).then((r) => r));
    await waitFor(async () => creates() - before >= 50, '50 creations waiting at the PSP', 10_000);
    expect(await openTransactions()).toBe(0);
    const during = [await send(), await send(), await send()];
    // What took the app down before: health and reads while orders waited on the PSP.
    await request(stack.url).get('/health').expect(200);
    await request(stack.url).get(`/orders/${paid.id}`).expect(200);
    stack.mock.stallPaymentIntentCreation(0);

    expect(calm.flat().filter((d) => d.status !== 200)).toEqual([]);
    expect(during.flat().filter((d) => d.status !== 200)).toEqual([]);
    // The median of three bursts' p99 on each side: one scheduler hiccup on a shared machine moves a p99, not a median of them.
    const [calmP99, duringP99] = [medianP99(calm), medianP99(during)];
    const ratio = duringP99 / Math.max(calmP99, NOISE_FLOOR_MS);
    // The figures are shown when it fails.
    expect({ calmP99: Math.round(calmP99), duringP99: Math.round(duringP99), ratioAtMost1_5: ratio <= 1.5 }).toEqual(expect.objectContaining({ ratioAtMost1_5: true }));

    // The stalled creations end: the SDK times out, its retry finds the first try still running, and the answer is a 503; none leaves an order without a payment.
    const answers = await Promise.all(stalled);
    for (const res of answers) {
      if (res.status === 201) expect(res.body.payment.id).toMatch(/^pi_/);
      else expect(res.body).toEqual({ statusCode: 503, error: 'Service Unavailable', message: expect.stringMatching(/payment provider did not answer in time/) });
    }
    const orphans = await stack.db.query(`SELECT count(*)::int AS n FROM orders o WHERE NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id)`);
    expect(orphans.rows[0].n).toBe(0);
  }, 120_000);
});
