import request from 'supertest';
import { ChildStack, signedHeader, startChildStack } from '../support/child-stack';
import { orderBody } from '../support/test-app';
import { waitFor } from '../support/wait';

describe('POST /webhooks/stripe (verify -> inbox -> queue -> 2xx)', () => {
  let stack: ChildStack;

  beforeAll(async () => {
    // Webhooks are delivered by the tests themselves, so each case controls exactly what arrives.
    stack = await startChildStack({ forwardWebhooks: false });
  });
  afterAll(async () => stack?.stop());

  const rows = async (id: string) => (await stack.db.query('SELECT * FROM webhook_events WHERE id = $1', [id])).rows;
  const count = async () => Number((await stack.db.query('SELECT count(*) AS n FROM webhook_events')).rows[0].n);
  const post = (payload: string, signature?: string) => {
    const req = request(stack.url).post('/webhooks/stripe').set('Content-Type', 'application/json');
    if (signature !== undefined) req.set('Stripe-Signature', signature);
    return req.send(payload);
  };
  const getOrder = async (id: string) => (await request(stack.url).get(`/orders/${id}`).expect(200)).body;

  /** A real order paid at the mock, with the mock's events for it (collected, not delivered). */
  async function paidOrder() {
    const order = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body;
    const before = stack.mock.events().length;
    await stack.stripe.paymentIntents.confirm(order.payment.id, { payment_method: 'pm_card_visa' });
    const events = stack.mock.events().slice(before).filter((e) => JSON.stringify(e.data.object).includes(order.payment.id));
    return { order, events };
  }

  function fakeEvent(id = `evt_test_${Math.random().toString(36).slice(2)}`) {
    return JSON.stringify({ id, object: 'event', type: 'customer.created', created: Math.floor(Date.now() / 1000), data: { object: { id: 'cus_1', object: 'customer' } } });
  }

  describe('refuses every forged or broken delivery with 400/413 and stores nothing', () => {
    const now = () => Math.floor(Date.now() / 1000);
    const cases: Array<[string, () => { payload: string; signature?: string }]> = [
      ['no signature header', () => ({ payload: fakeEvent() })],
      ['a malformed header', () => ({ payload: fakeEvent(), signature: 'garbage' })],
      ['a header without v1', () => ({ payload: fakeEvent(), signature: `t=${now()}` })],
      ['the wrong secret', () => { const p = fakeEvent(); return { payload: p, signature: signedHeader(p, { secret: 'whsec_someone_else' }) }; }],
      ['a tampered body', () => { const p = fakeEvent(); return { payload: p.replace('customer.created', 'payment_intent.succeeded'), signature: signedHeader(p) }; }],
      ['a stale timestamp', () => { const p = fakeEvent(); return { payload: p, signature: signedHeader(p, { timestamp: now() - 3600 }) }; }],
      ['a timestamp far in the future', () => { const p = fakeEvent(); return { payload: p, signature: signedHeader(p, { timestamp: now() + 3600 }) }; }],
      ['a signed body that is not JSON', () => { const p = '{"id": "evt_x", "type":'; return { payload: p, signature: signedHeader(p) }; }],
      ['a signed JSON body that is not an event', () => { const p = '{"hello": "world"}'; return { payload: p, signature: signedHeader(p) }; }],
    ];
    it.each(cases)('%s', async (_name, make) => {
      const before = await count();
      const { payload, signature } = make();
      const res = await post(payload, signature);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request', message: expect.any(String) });
      expect(await count()).toBe(before);
    });

    it('an oversized body answers 413', async () => {
      const before = await count();
      const payload = JSON.stringify({ id: 'evt_big', type: 'customer.created', created: now(), data: { object: { pad: 'x'.repeat(300_000) } } });
      const res = await post(payload, signedHeader(payload));
      expect(res.status).toBe(413);
      expect(await count()).toBe(before);
    });

    it('counts rejections by reason', async () => {
      const metrics = await request(stack.url).get('/metrics').set(stack.admin).expect(200);
      expect(metrics.text).toMatch(/settle_webhooks_rejected_total\{reason="signature"\} [1-9]/);
      expect(metrics.text).toMatch(/settle_webhooks_rejected_total\{reason="stale"\} [1-9]/);
    });
  });

  it('accepts a valid event: stored with its raw bytes, queued, applied, 2xx', async () => {
    const { order, events } = await paidOrder();
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['payment_intent.succeeded']));
    for (const event of events) {
      const payload = JSON.stringify(event, null, 2);
      const res = await post(payload, signedHeader(payload));
      expect(res.status).toBe(200);
      const [row] = await rows(event.id);
      expect(row).toMatchObject({ type: event.type, payload, source: 'webhook' });
      expect(Number(row.event_created)).toBe(event.created);
    }
    const paid = await waitFor(async () => ((await getOrder(order.id)).status === 'paid' ? getOrder(order.id) : null), 'order paid');
    expect(paid.history).toEqual([expect.objectContaining({ from: 'pending_payment', to: 'paid', eventId: expect.stringMatching(/^evt_/) })]);
    await waitFor(async () => (await stack.db.query(`SELECT count(*) AS n FROM webhook_events WHERE id = ANY($1) AND status = 'processed'`, [events.map((e) => e.id)])).rows[0].n === String(events.length), 'all processed');
  });

  it('accepts any of several secrets while one is being rotated', async () => {
    // The app was started with one secret; a second instance gets the old and the new.
    const rotated = await stack.startApp({ STRIPE_WEBHOOK_SECRET: 'whsec_old_one_123, whsec_test_settle_0123456789' });
    const payload = fakeEvent();
    await request(rotated.url).post('/webhooks/stripe').set('Content-Type', 'application/json').set('Stripe-Signature', signedHeader(payload, { secret: 'whsec_old_one_123' })).send(payload).expect(200);
    const other = fakeEvent();
    await request(rotated.url).post('/webhooks/stripe').set('Content-Type', 'application/json').set('Stripe-Signature', signedHeader(other)).send(other).expect(200);
    // The same bytes, signed with a secret the instance does not hold: only the secret is wrong.
    const stranger = fakeEvent();
    await request(rotated.url).post('/webhooks/stripe').set('Content-Type', 'application/json').set('Stripe-Signature', signedHeader(stranger, { secret: 'whsec_nobody' })).send(stranger).expect(400);
  });

  it('records unknown event types and unknown objects as ignored, with 2xx', async () => {
    const unknownType = fakeEvent();
    await post(unknownType, signedHeader(unknownType)).expect(200);
    const id = JSON.parse(unknownType).id;
    await waitFor(async () => (await rows(id))[0]?.status === 'ignored', 'unknown type ignored');
    expect((await rows(id))[0].outcome).toBe('unknown_type');

    const stranger = JSON.stringify({ id: 'evt_stranger_pi', object: 'event', type: 'payment_intent.succeeded', created: Math.floor(Date.now() / 1000), data: { object: { id: 'pi_not_ours', object: 'payment_intent', status: 'succeeded', amount: 100, currency: 'usd', metadata: {} } } });
    await post(stranger, signedHeader(stranger)).expect(200);
    await waitFor(async () => (await rows('evt_stranger_pi'))[0]?.status === 'ignored', 'unknown object ignored');
    expect((await rows('evt_stranger_pi'))[0].outcome).toBe('unknown_object');
  });

  it('answers 2xx to a duplicate without queuing it again, and counts it', async () => {
    /** A counter's value in GET /metrics (0 when it has no sample yet). */
    const metric = async (line: RegExp) => Number(line.exec((await request(stack.url).get('/metrics').set(stack.admin).expect(200)).text)?.[1] ?? 0);
    const duplicates = () => metric(/^settle_webhooks_duplicate_total (\S+)$/m);
    // A job run for an event already applied ends as 'already_done': what a second enqueue would cause.
    const reruns = () => metric(/^settle_event_processing_seconds_count\{outcome="already_done"\} (\S+)$/m);
    const [duplicatesBefore, rerunsBefore] = [await duplicates(), await reruns()];

    const payload = fakeEvent();
    await post(payload, signedHeader(payload)).expect(200);
    await waitFor(async () => (await rows(JSON.parse(payload).id))[0]?.status === 'ignored', 'the first delivery applied');
    await post(payload, signedHeader(payload)).expect(200);
    // A later event, applied after anything the duplicate could have queued.
    const later = fakeEvent();
    await post(later, signedHeader(later)).expect(200);
    await waitFor(async () => (await rows(JSON.parse(later).id))[0]?.status === 'ignored', 'the later event applied');

    expect(await duplicates()).toBe(duplicatesBefore + 1);
    expect(await reruns()).toBe(rerunsBefore);
  });

  it('applies 20 concurrent deliveries of one event exactly once', async () => {
    const { order, events } = await paidOrder();
    const success = events.find((e) => e.type === 'payment_intent.succeeded')!;
    const payload = JSON.stringify(success);
    const responses = await Promise.all(Array.from({ length: 20 }, () => post(payload, signedHeader(payload))));
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
    await waitFor(async () => (await getOrder(order.id)).status === 'paid', 'paid');
    await waitFor(async () => (await rows(success.id))[0]?.status === 'processed', 'processed');
    const history = (await getOrder(order.id)).history;
    expect(history).toHaveLength(1);
    expect(history[0]).toMatchObject({ from: 'pending_payment', to: 'paid', eventId: success.id });
    expect((await rows(success.id))[0].attempts).toBe(1);
  });

  it('marks an event that fails every attempt dead, lists it, and replays it once fixed', async () => {
    const { order, events } = await paidOrder();
    const success = events.find((e) => e.type === 'payment_intent.succeeded')!;
    // A row whose payload cannot be read stands in for any persistent processing failure.
    await stack.db.query(`INSERT INTO webhook_events (id, type, payload, event_created, source, status, received_at) VALUES ($1, $2, 'not json', $3, 'webhook', 'received', now())`, [success.id, success.type, success.created]);
    await request(stack.url).post(`/admin/webhook-events/${success.id}/replay`).expect(401);
    await request(stack.url).post(`/admin/webhook-events/${success.id}/replay`).set(stack.admin).expect(202);
    const dead = await waitFor(async () => ((await rows(success.id))[0]?.status === 'dead' ? (await rows(success.id))[0] : null), 'dead', 40000, 200);
    expect(dead.attempts).toBe(5);
    expect(dead.last_error).toMatch(/JSON/);
    const listed = await request(stack.url).get('/admin/webhook-events').query({ status: 'dead' }).set(stack.admin).expect(200);
    expect(listed.body.data.map((e: { id: string }) => e.id)).toContain(success.id);
    expect(listed.body.data[0]).not.toHaveProperty('payload');
    await request(stack.url).get('/admin/webhook-events').query({ status: 'lost' }).set(stack.admin).expect(400);
    expect((await getOrder(order.id)).status).toBe('pending_payment');

    await stack.db.query(`UPDATE webhook_events SET payload = $2 WHERE id = $1`, [success.id, JSON.stringify(success)]);
    await request(stack.url).post(`/admin/webhook-events/${success.id}/replay`).set(stack.admin).expect(202);
    await waitFor(async () => (await getOrder(order.id)).status === 'paid', 'paid after replay');
    expect((await rows(success.id))[0]).toMatchObject({ status: 'processed', outcome: 'applied' });
    await request(stack.url).post('/admin/webhook-events/evt_nope/replay').set(stack.admin).expect(404);
  }, 60000);

  it('is never throttled', async () => {
    // An instance whose API limit is 5 a minute: the webhook route must not count against it.
    const limited = await stack.startApp({ RATE_LIMIT_PER_MINUTE: '5' });
    const statuses = await Promise.all(
      Array.from({ length: 50 }, () => request(limited.url).post('/webhooks/stripe').set('Content-Type', 'application/json').set('Stripe-Signature', 'nope').send('{}').then((r) => r.status)),
    );
    expect(new Set(statuses)).toEqual(new Set([400]));
    // The same limit does hold elsewhere, so the route above was really exempt.
    const orders = await Promise.all(Array.from({ length: 8 }, () => request(limited.url).get('/orders/00000000-0000-4000-8000-000000000000').then((r) => r.status)));
    expect(orders).toContain(429);
  });
});
