import request from 'supertest';
import { Client } from 'pg';
import { orderBody, startTestStack, TestStack } from '../support/test-app';
import { waitFor } from '../support/wait';

describe('Orders API (real HTTP, PostgreSQL, Redis, Stripe SDK -> mock PSP)', () => {
  let stack: TestStack;
  let db: Client;

  beforeAll(async () => {
    stack = await startTestStack();
    db = new Client({ connectionString: stack.databaseUrl });
    await db.connect();
  });

  afterAll(async () => {
    await db?.end();
    await stack?.stop();
  });

  const count = async (table: string) => Number((await db.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
  const psp = () => stack.stripe;
  const getOrder = async (id: string) => (await request(stack.url).get(`/orders/${id}`).expect(200)).body;
  const pay = async (orderId: string, paymentMethod = 'pm_card_visa') => {
    const order = await getOrder(orderId);
    await psp().paymentIntents.confirm(order.payment.id, { payment_method: paymentMethod });
    return waitFor(async () => ((await getOrder(orderId)).status === 'paid' ? getOrder(orderId) : null), `order ${orderId} paid`);
  };

  describe('POST /orders', () => {
    it('offers redirect payment methods only when the checkout gives a returnUrl; a bad returnUrl or checkout URL is a 400', async () => {
      const plain = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body;
      expect((await psp().paymentIntents.retrieve(plain.payment.id)).automatic_payment_methods).toEqual({ enabled: true, allow_redirects: 'never' });
      const redirects = (await request(stack.url).post('/orders').send(orderBody({ returnUrl: 'https://shop.example/return' })).expect(201)).body;
      expect((await psp().paymentIntents.retrieve(redirects.payment.id)).automatic_payment_methods).toEqual({ enabled: true, allow_redirects: 'always' });
      const before = await count('orders');
      const bad = await request(stack.url).post('/orders').send(orderBody({ returnUrl: 'javascript:alert(1)' })).expect(400);
      expect(bad.body.message).toMatch(/returnUrl must be an http\(s\) URL/);
      const badCheckout = await request(stack.url).post('/orders').send(orderBody({ checkout: { successUrl: 'ftp://x', cancelUrl: 'https://shop.example/cart' } })).expect(400);
      expect(badCheckout.body.message).toMatch(/checkout.successUrl must be an http\(s\) URL/);
      expect(await count('orders')).toBe(before);
    });

    it('creates the order and its PaymentIntent, computing the amount on the server', async () => {
      const res = await request(stack.url).post('/orders').send(orderBody()).expect(201);
      expect(res.body).toMatchObject({
        status: 'pending_payment',
        amount: 1299 * 2 + 850,
        currency: 'usd',
        customerEmail: 'ada@example.com',
        amountRefunded: 0,
        history: [],
      });
      expect(res.body.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(res.body.payment.id).toMatch(/^pi_/);
      expect(res.body.payment.clientSecret).toMatch(new RegExp(`^${res.body.payment.id}_secret_`));
      const intent = await psp().paymentIntents.retrieve(res.body.payment.id);
      expect(intent.amount).toBe(3448);
      expect(intent.currency).toBe('usd');
      expect(intent.metadata.order_id).toBe(res.body.id);
      expect(await getOrder(res.body.id)).toEqual(res.body);
    });

    it('replays the same order for the same Idempotency-Key and body, creating nothing more', async () => {
      const key = `replay-${Date.now()}`;
      const first = await request(stack.url).post('/orders').set('Idempotency-Key', key).send(orderBody()).expect(201);
      const before = { orders: await count('orders'), intents: stack.mock.stats().byRoute['POST /v1/payment_intents'] };
      // Key order in the body does not make it a different request.
      const reordered = { customerEmail: 'ada@example.com', items: orderBody().items, currency: 'usd' };
      const second = await request(stack.url).post('/orders').set('Idempotency-Key', key).send(reordered).expect(200);
      expect(second.body.id).toBe(first.body.id);
      expect(second.body.payment.id).toBe(first.body.payment.id);
      expect(await count('orders')).toBe(before.orders);
      expect(stack.mock.stats().byRoute['POST /v1/payment_intents']).toBe(before.intents);
    });

    it('answers 422 when an Idempotency-Key comes back with a different body', async () => {
      const key = `mismatch-${Date.now()}`;
      await request(stack.url).post('/orders').set('Idempotency-Key', key).send(orderBody()).expect(201);
      const before = await count('orders');
      const res = await request(stack.url).post('/orders').set('Idempotency-Key', key).send(orderBody({ currency: 'eur' })).expect(422);
      expect(res.body).toMatchObject({ statusCode: 422, error: 'Unprocessable Entity' });
      expect(res.body.message).toMatch(/Idempotency-Key/);
      expect(await count('orders')).toBe(before);
    });

    it('creates exactly one order when ten requests race with one Idempotency-Key', async () => {
      const key = `race-${Date.now()}`;
      const before = await count('orders');
      const responses = await Promise.all(
        Array.from({ length: 10 }, () => request(stack.url).post('/orders').set('Idempotency-Key', key).send(orderBody())),
      );
      const statuses = responses.map((r) => r.status).sort();
      expect(statuses.filter((s) => s === 201)).toHaveLength(1);
      expect(statuses.every((s) => s === 200 || s === 201)).toBe(true);
      expect(new Set(responses.map((r) => r.body.id)).size).toBe(1);
      expect(await count('orders')).toBe(before + 1);
      const intents = await psp().paymentIntents.list({ limit: 100 });
      expect(intents.data.filter((pi) => pi.metadata.order_id === responses[0]!.body.id)).toHaveLength(1);
    });

    describe('rejects bad input with 400 naming the field, writing nothing and calling no PSP', () => {
      const cases: Array<[string, unknown, RegExp]> = [
        ['missing currency', orderBody({ currency: undefined }), /currency/],
        ['upper-case currency', orderBody({ currency: 'USD' }), /currency/],
        ['no items', orderBody({ items: [] }), /items/],
        ['items not an array', orderBody({ items: 'x' }), /items/],
        ['negative unitAmount', orderBody({ items: [{ sku: 'A', name: 'A', unitAmount: -1, quantity: 1 }] }), /items\.0\.unitAmount/],
        ['fractional unitAmount', orderBody({ items: [{ sku: 'A', name: 'A', unitAmount: 12.5, quantity: 1 }] }), /items\.0\.unitAmount/],
        ['amount as a string', orderBody({ items: [{ sku: 'A', name: 'A', unitAmount: '1299', quantity: 1 }] }), /items\.0\.unitAmount/],
        ['zero quantity', orderBody({ items: [{ sku: 'A', name: 'A', unitAmount: 100, quantity: 0 }] }), /items\.0\.quantity/],
        ['missing sku', orderBody({ items: [{ name: 'A', unitAmount: 100, quantity: 1 }] }), /items\.0\.sku/],
        ['bad email', orderBody({ customerEmail: 'not-an-email' }), /customerEmail/],
        ['unknown field', orderBody({ amount: 1 }), /amount should not exist/],
        ['client-set status', orderBody({ status: 'paid' }), /status should not exist/],
        ['a total of zero', orderBody({ items: [{ sku: 'A', name: 'A', unitAmount: 0, quantity: 3 }] }), /greater than 0/],
        ['a total above the largest payable amount', orderBody({ items: [{ sku: 'A', name: 'A', unitAmount: 99_999_999, quantity: 2 }] }), /largest payable/],
        ['a JSON array body', [orderBody()], /.+/],
      ];
      it.each(cases)('%s', async (_name, body, message) => {
        const before = { orders: await count('orders'), keys: await count('idempotency_keys'), psp: stack.mock.stats().byRoute['POST /v1/payment_intents'] };
        const res = await request(stack.url).post('/orders').set('Idempotency-Key', `bad-${Math.random()}`).send(body as object).expect(400);
        expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
        expect(res.body.message).toMatch(message);
        expect(await count('orders')).toBe(before.orders);
        expect(await count('idempotency_keys')).toBe(before.keys);
        expect(stack.mock.stats().byRoute['POST /v1/payment_intents']).toBe(before.psp);
      });

      it('malformed JSON', async () => {
        const res = await request(stack.url).post('/orders').set('Content-Type', 'application/json').send('{"currency": "usd",').expect(400);
        expect(res.body.message).toMatch(/JSON/);
      });

      it('a body over the size limit answers 413', async () => {
        const before = await count('orders');
        const huge = orderBody({ customerEmail: 'a@example.com', items: [{ sku: 'A', name: 'x'.repeat(300_000), unitAmount: 1, quantity: 1 }] });
        const res = await request(stack.url).post('/orders').send(huge).expect(413);
        expect(res.body).toMatchObject({ statusCode: 413, message: expect.stringMatching(/too large/) });
        expect(await count('orders')).toBe(before);
      });

      it('an Idempotency-Key that is too long', async () => {
        const res = await request(stack.url).post('/orders').set('Idempotency-Key', 'k'.repeat(300)).send(orderBody()).expect(400);
        expect(res.body.message).toMatch(/Idempotency-Key/);
      });
    });
  });

  describe('GET /orders/:id', () => {
    it('answers 404 for an unknown or malformed id', async () => {
      const unknown = await request(stack.url).get('/orders/00000000-0000-4000-8000-000000000000').expect(404);
      expect(unknown.body).toMatchObject({ statusCode: 404, error: 'Not Found', message: expect.stringMatching(/not found/) });
      await request(stack.url).get('/orders/not-a-uuid').expect(404);
    });
  });

  describe('GET /orders (admin)', () => {
    it('needs the admin key', async () => {
      await request(stack.url).get('/orders').expect(401);
      const wrong = await request(stack.url).get('/orders').set('Authorization', 'Bearer nope').expect(401);
      expect(wrong.body.message).toMatch(/ADMIN_API_KEY/);
    });

    it('pages newest first with a cursor, without gaps or repeats, and filters by status', async () => {
      const created: string[] = [];
      for (let i = 0; i < 5; i++) created.push((await request(stack.url).post('/orders').send(orderBody()).expect(201)).body.id);
      const all = (await db.query('SELECT id FROM orders ORDER BY created_at DESC, id DESC')).rows.map((r) => r.id);
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: request.Response = await request(stack.url)
          .get('/orders')
          .query({ limit: 2, ...(cursor ? { cursor } : {}) })
          .set(stack.admin)
          .expect(200);
        expect(res.body.data.length).toBeLessThanOrEqual(2);
        seen.push(...res.body.data.map((o: { id: string }) => o.id));
        cursor = res.body.nextCursor;
      } while (cursor);
      expect(seen).toEqual(all);
      expect(seen.slice(0, 5)).toEqual([...created].reverse());

      const canceled = (await request(stack.url).post(`/orders/${created[0]}/cancel`).set(stack.admin).expect(200)).body;
      const filtered = await request(stack.url).get('/orders').query({ status: 'canceled' }).set(stack.admin).expect(200);
      expect(filtered.body.data.map((o: { id: string }) => o.id)).toContain(canceled.id);
      expect(filtered.body.data.every((o: { status: string }) => o.status === 'canceled')).toBe(true);
    });

    it('rejects a bad status, limit or cursor with 400', async () => {
      expect((await request(stack.url).get('/orders?status=lost').set(stack.admin).expect(400)).body.message).toMatch(/status must be one of/);
      expect((await request(stack.url).get('/orders?limit=0').set(stack.admin).expect(400)).body.message).toMatch(/limit/);
      expect((await request(stack.url).get('/orders?limit=abc').set(stack.admin).expect(400)).body.message).toMatch(/limit/);
      expect((await request(stack.url).get('/orders?cursor=bogus').set(stack.admin).expect(400)).body.message).toMatch(/cursor/);
    });
  });

  describe('POST /orders/:id/cancel (admin)', () => {
    it('cancels an unpaid order and its PaymentIntent, with one history entry', async () => {
      const order = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body;
      await request(stack.url).post(`/orders/${order.id}/cancel`).expect(401);
      const res = await request(stack.url).post(`/orders/${order.id}/cancel`).set(stack.admin).expect(200);
      expect(res.body.status).toBe('canceled');
      expect(res.body.history).toEqual([expect.objectContaining({ from: 'pending_payment', to: 'canceled', eventId: null })]);
      expect((await psp().paymentIntents.retrieve(order.payment.id)).status).toBe('canceled');
      // Canceling twice is harmless; the webhook for the cancellation adds no second entry.
      await request(stack.url).post(`/orders/${order.id}/cancel`).set(stack.admin).expect(200);
      await stack.mock.idle();
      const after = await getOrder(order.id);
      expect(after.history.filter((h: { to: string }) => h.to === 'canceled')).toHaveLength(1);
    });

    it('answers 409 for a paid order and leaves it paid', async () => {
      const order = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body;
      await pay(order.id);
      const res = await request(stack.url).post(`/orders/${order.id}/cancel`).set(stack.admin).expect(409);
      expect(res.body.message).toMatch(/paid/);
      expect((await getOrder(order.id)).status).toBe('paid');
    });

    it('answers 409 when the PSP already took the money though no webhook has said so yet', async () => {
      stack.mock.setForwardTo(undefined);
      try {
        const order = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body;
        await psp().paymentIntents.confirm(order.payment.id, { payment_method: 'pm_card_visa' });
        await request(stack.url).post(`/orders/${order.id}/cancel`).set(stack.admin).expect(409);
        expect((await psp().paymentIntents.retrieve(order.payment.id)).status).toBe('succeeded');
      } finally {
        stack.mock.setForwardTo(`${stack.url}/webhooks/stripe`);
      }
    });

    it('answers 404 for an unknown order', async () => {
      await request(stack.url).post('/orders/00000000-0000-4000-8000-000000000000/cancel').set(stack.admin).expect(404);
    });
  });

  describe('POST /orders/:id/refunds (admin)', () => {
    it('answers 409 for an unpaid order and calls no PSP', async () => {
      const order = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body;
      const before = stack.mock.stats().byRoute['POST /v1/refunds'] ?? 0;
      const res = await request(stack.url).post(`/orders/${order.id}/refunds`).set(stack.admin).send({}).expect(409);
      expect(res.body.message).toMatch(/only paid orders/);
      expect(stack.mock.stats().byRoute['POST /v1/refunds'] ?? 0).toBe(before);
    });

    it('refunds part, then the rest, and the order follows the PSP', async () => {
      const order = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body;
      await pay(order.id);
      await request(stack.url).post(`/orders/${order.id}/refunds`).send({ amount: 1000 }).expect(401);
      expect((await request(stack.url).post(`/orders/${order.id}/refunds`).set(stack.admin).send({ amount: 0 }).expect(400)).body.message).toMatch(/amount/);
      expect((await request(stack.url).post(`/orders/${order.id}/refunds`).set(stack.admin).send({ amount: 5000 }).expect(409)).body.message).toMatch(/only 3448 left/);

      const partial = await request(stack.url).post(`/orders/${order.id}/refunds`).set(stack.admin).send({ amount: 1000 }).expect(201);
      expect(partial.body.refund).toMatchObject({ id: expect.stringMatching(/^re_/), amount: 1000 });
      await waitFor(async () => (await getOrder(order.id)).status === 'partially_refunded', 'partially_refunded');
      expect((await getOrder(order.id)).amountRefunded).toBe(1000);

      const rest = await request(stack.url).post(`/orders/${order.id}/refunds`).set(stack.admin).send({}).expect(201);
      expect(rest.body.refund.amount).toBe(2448);
      const refunded = await waitFor(async () => ((await getOrder(order.id)).status === 'refunded' ? getOrder(order.id) : null), 'refunded');
      expect(refunded.amountRefunded).toBe(3448);
      expect(refunded.history.map((h: { to: string }) => h.to)).toEqual(['paid', 'partially_refunded', 'refunded']);

      const none = await request(stack.url).post(`/orders/${order.id}/refunds`).set(stack.admin).send({}).expect(409);
      expect(none.body.message).toMatch(/refunded|nothing left/);
      const charge = await psp().charges.retrieve((await psp().paymentIntents.retrieve(order.payment.id)).latest_charge as string);
      expect(charge.amount_refunded).toBe(3448);
    });
  });
});

describe('Orders API when the PSP is unreachable', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ env: { STRIPE_API_URL: 'http://127.0.0.1:9' } });
  });
  afterAll(async () => stack?.stop());

  it('answers 503 naming the PSP and leaves no order behind', async () => {
    const db = new Client({ connectionString: stack.databaseUrl });
    await db.connect();
    try {
      const res = await request(stack.url).post('/orders').set('Idempotency-Key', 'psp-down').send(orderBody()).expect(503);
      expect(res.body.message).toMatch(/payment provider is unavailable/);
      expect(Number((await db.query('SELECT count(*) AS n FROM orders')).rows[0].n)).toBe(0);
      expect(Number((await db.query('SELECT count(*) AS n FROM idempotency_keys')).rows[0].n)).toBe(0);
    } finally {
      await db.end();
    }
  });
});
