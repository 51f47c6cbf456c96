import request from 'supertest';
import Stripe from 'stripe';
import { orderBody, startTestStack, TEST_ADMIN_KEY, TEST_WEBHOOK_SECRET, TestStack } from '../support/test-app';
import { TestRedis } from '../support/redis-server';
import { waitFor } from '../support/wait';

/** Raw HTTP, so a test sends exactly the bytes it means (supertest would re-encode). */
async function send(url: string, path: string, body: string | Buffer, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}${path}`, { method: 'POST', body, headers: { 'Content-Type': 'application/json', ...headers } });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

function signed(payload: string | Buffer, timestamp = Math.floor(Date.now() / 1000)): string {
  return Stripe.webhooks.generateTestHeaderString({ payload: payload.toString(), secret: TEST_WEBHOOK_SECRET, timestamp });
}

describe('Hostile input: refused with 4xx, nothing stored, the process unharmed', () => {
  let stack: TestStack;

  beforeAll(async () => {
    // RATE_LIMIT_PER_MINUTE unset: the default, which must not throttle a storefront server.
    // The mock's own webhooks stay out, so counting stored events sees only what a test sends.
    stack = await startTestStack({ env: { RATE_LIMIT_PER_MINUTE: '', METRICS_TOKEN: 'prometheus-scrape-token-7f3a9' }, forwardWebhooks: false });
  });
  afterAll(async () => stack?.stop());

  /** What an attack could have changed: rows of every table an order or event writes, and PaymentIntents created. */
  const snapshot = async () => {
    const { rows } = await stack.db.query(
      `SELECT (SELECT count(*) FROM orders) AS orders, (SELECT count(*) FROM idempotency_keys) AS keys,
              (SELECT count(*) FROM payments) AS payments, (SELECT count(*) FROM webhook_events) AS events`,
    );
    return { ...rows[0], intents: stack.mock.stats().byRoute['POST /v1/payment_intents'] ?? 0 };
  };
  const unchanged = async (attack: () => Promise<void>) => {
    const before = await snapshot();
    await attack();
    expect(await snapshot()).toEqual(before);
  };
  const alive = async () => {
    await request(stack.url).get('/health').expect(200);
    await request(stack.url).post('/orders').send(orderBody()).expect(201);
  };

  describe('POST /orders bodies that used to exhaust memory or the event loop', () => {
    it('30,000 empty items: 400 naming items, a short answer', async () => {
      await unchanged(async () => {
        const res = await send(stack.url, '/orders', JSON.stringify({ currency: 'usd', customerEmail: 'a@example.com', items: new Array(30_000).fill({}) }));
        expect(res.status).toBe(400);
        expect(JSON.parse(res.text).message).toBe('items must hold at most 100 lines, got 30000');
        expect(res.text.length).toBeLessThan(300);
      });
      await alive();
    });

    it('87,000 empty items (261 kB): 413, over the /orders body limit, before anything parses it', async () => {
      await unchanged(async () => {
        const res = await send(stack.url, '/orders', JSON.stringify({ currency: 'usd', customerEmail: 'a@example.com', items: new Array(87_000).fill({}) }));
        expect(res.status).toBe(413);
        expect(JSON.parse(res.text)).toMatchObject({ statusCode: 413, message: expect.stringMatching(/too large/i) });
      });
      await alive();
    });

    it('101 valid lines: 400 naming items', async () => {
      const items = new Array(101).fill({ sku: 'A', name: 'A', unitAmount: 100, quantity: 1 });
      await unchanged(async () => {
        const res = await request(stack.url).post('/orders').send(orderBody({ items })).expect(400);
        expect(res.body.message).toMatch(/^items must hold at most 100 lines/);
      });
    });

    it('100 lines with every field wrong: one message per field, capped, not one per constraint', async () => {
      const items = new Array(100).fill({ sku: 5, name: 5, unitAmount: 'x', quantity: 'y' });
      await unchanged(async () => {
        const res = await request(stack.url).post('/orders').send(orderBody({ items })).expect(400);
        expect(res.body.message).toMatch(/^items\.0\.sku/);
        expect(res.body.message).toMatch(/\(and \d+ more\)$/);
        expect(res.body.message.length).toBeLessThan(1200);
      });
    });

    it.each([
      ['/orders', 60_000],
      ['/orders/00000000-0000-4000-8000-000000000000/refunds', 60_000],
      ['/admin/webhook-events/evt_x/replay', 120_000],
    ])('JSON nested %s levels deep on %s: 400, not a stack overflow', async (path, depth) => {
      await unchanged(async () => {
        const res = await send(stack.url, path as string, '['.repeat(depth as number) + ']'.repeat(depth as number), { Authorization: `Bearer ${TEST_ADMIN_KEY}` });
        expect(res.status).toBe(400);
        expect(JSON.parse(res.text).message).toMatch(/deeper than 32 levels/);
      });
      await alive();
    });
  });

  describe('POST /orders input PostgreSQL or the arithmetic cannot take', () => {
    const line = { sku: 'A', name: 'A', unitAmount: 1000, quantity: 1 };
    it.each([
      ['NUL in name', { items: [{ ...line, name: 'Mug\u0000' }] }, /^items\.0\.name must not contain NUL/],
      ['NUL in sku', { items: [{ ...line, sku: '\u0000' }] }, /^items\.0\.sku must not contain NUL/],
      ['NUL in customerEmail', { customerEmail: 'a\u0000@example.com' }, /^customerEmail must not contain NUL/],
      ['a lone surrogate in name', { items: [{ ...line, name: 'Mug \ud800' }] }, /^items\.0\.name .*surrogates/],
      ['a lone surrogate in sku', { items: [{ ...line, sku: '\udfff' }] }, /^items\.0\.sku .*surrogates/],
      ['a lone surrogate in customerEmail', { customerEmail: '\ud800@example.com' }, /^customerEmail .*surrogates/],
      ['items: [[]]', { items: [[]] }, /^items\.0 must be an object/],
      ['items: [[item]]', { items: [[line]] }, /^items\.0 must be an object/],
      ['items: [null]', { items: [null] }, /^items\.0 must be an object/],
      ['unitAmount 1e300', { items: [{ ...line, unitAmount: 1e300 }] }, /^items\.0\.unitAmount/],
      ['quantity 2^53', { items: [{ ...line, quantity: 2 ** 53 }] }, /^items\.0\.quantity/],
      ['currency xyz', { currency: 'xyz' }, /^currency "xyz" is not one Stripe supports/],
      ['jpy below ¥50 (whole units)', { currency: 'jpy', items: [{ ...line, unitAmount: 49 }] }, /items add up to 49 whole units of jpy, less than Stripe's minimum charge of 50/],
      ['usd below $0.50', { items: [{ ...line, unitAmount: 49 }] }, /items add up to 49 minor units of usd, less than Stripe's minimum/],
      ['kwd not in steps of 10', { currency: 'kwd', items: [{ ...line, unitAmount: 1005 }] }, /steps of 10/],
    ])('%s: 400 naming the field', async (_name, override, message) => {
      await unchanged(async () => {
        const res = await request(stack.url).post('/orders').set('Idempotency-Key', `hostile-${Math.random()}`).send(orderBody(override)).expect(400);
        expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request', message: expect.stringMatching(message) });
      });
    });

    it('takes a zero-decimal currency in whole units: ¥500 is amount 500', async () => {
      const res = await request(stack.url).post('/orders').send(orderBody({ currency: 'jpy', items: [{ ...line, unitAmount: 500 }] })).expect(201);
      expect(res.body).toMatchObject({ amount: 500, currency: 'jpy' });
      expect((await stack.stripe.paymentIntents.retrieve(res.body.payment.id)).amount).toBe(500);
    });

    it.each([
      ['dated year -271821', Buffer.from('-271821-04-20T00:00:00.000Z|00000000-0000-4000-8000-000000000000').toString('base64url')],
      ['dated year +275760', Buffer.from('+275760-09-13T00:00:00.000Z|00000000-0000-4000-8000-000000000000').toString('base64url')],
      ['with a date in another format', Buffer.from('1 Jan 2020|00000000-0000-4000-8000-000000000000').toString('base64url')],
      ['holding NUL', Buffer.from('2020-01-01T00:00:00.000Z|\u0000').toString('base64url')],
    ])('a list cursor %s: 400 naming cursor', async (_name, cursor) => {
      const res = await request(stack.url).get('/orders').query({ cursor }).set(stack.admin).expect(400);
      expect(res.body.message).toMatch(/^cursor is not valid/);
    });
  });

  describe('POST /webhooks/stripe signed oddities', () => {
    const event = (over: Record<string, unknown> = {}) =>
      JSON.stringify({ id: `evt_hostile_${Math.random().toString(36).slice(2)}`, object: 'event', type: 'customer.created', created: Math.floor(Date.now() / 1000), data: { object: { id: 'cus_1', object: 'customer' } }, ...over });

    it('a body starting with a UTF-8 BOM, signed over those bytes: 400, nothing stored', async () => {
      const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(event())]);
      await unchanged(async () => {
        const res = await send(stack.url, '/webhooks/stripe', body, { 'Stripe-Signature': signed(body) });
        expect(res.status).toBe(400);
        expect(JSON.parse(res.text).message).toMatch(/byte order mark/);
      });
    });

    it('a header with two t= (the first passes the future check, the second signs a year ahead): 400', async () => {
      const payload = event();
      const now = Math.floor(Date.now() / 1000);
      const yearAhead = signed(payload, now + 365 * 86400);
      await unchanged(async () => {
        const res = await send(stack.url, '/webhooks/stripe', payload, { 'Stripe-Signature': `t=${now},${yearAhead}` });
        expect(res.status).toBe(400);
        expect(JSON.parse(res.text).message).toMatch(/more than one t=/);
      });
    });

    it.each([['1e300', 1e300], ['-1', -1], ['year 10000', 253402300800]])('a signed event with created %s: 400, not 503', async (_n, created) => {
      const payload = event({ created });
      await unchanged(async () => {
        const res = await send(stack.url, '/webhooks/stripe', payload, { 'Stripe-Signature': signed(payload) });
        expect(res.status).toBe(400);
        expect(JSON.parse(res.text).message).toMatch(/created/);
      });
    });

    it('still takes an ordinary signed event', async () => {
      const payload = event();
      const res = await send(stack.url, '/webhooks/stripe', payload, { 'Stripe-Signature': signed(payload) });
      expect(res.status).toBe(200);
    });
  });

  describe('exposure', () => {
    it('/metrics needs the admin key or METRICS_TOKEN', async () => {
      await request(stack.url).get('/metrics').expect(401);
      await request(stack.url).get('/metrics').set('Authorization', 'Bearer not-the-token').expect(401);
      await request(stack.url).get('/metrics').set(stack.admin).expect(200).expect('Content-Type', /text\/plain/);
      const scraped = await request(stack.url).get('/metrics').set('Authorization', 'Bearer prometheus-scrape-token-7f3a9').expect(200);
      expect(scraped.text).toContain('settle_webhooks_received_total');
    });

    it('/docs, /docs-json and /docs-yaml need the admin key (Bearer, or Basic for a browser); METRICS_TOKEN does not open them', async () => {
      for (const path of ['/docs', '/docs-json', '/docs-yaml', '/docs/swagger-ui-init.js']) {
        await request(stack.url).get(path).expect(401).expect('WWW-Authenticate', /Basic/);
        await request(stack.url).get(path).set('Authorization', 'Bearer prometheus-scrape-token-7f3a9').expect(401);
        await request(stack.url).get(path).set(stack.admin).expect(200);
      }
      const basic = Buffer.from(`admin:${TEST_ADMIN_KEY}`).toString('base64');
      await request(stack.url).get('/docs').set('Authorization', `Basic ${basic}`).expect(200).expect('Content-Type', /html/);
    });

    it('answers without X-Powered-By and with security headers', async () => {
      for (const res of [await request(stack.url).get('/health'), await request(stack.url).post('/orders').send({})]) {
        expect(res.headers['x-powered-by']).toBeUndefined();
        expect(res.headers['x-content-type-options']).toBe('nosniff');
        expect(res.headers['content-security-policy']).toContain("default-src 'self'");
        expect(res.headers['strict-transport-security']).toMatch(/max-age=/);
        expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
      }
    });
  });

  it('never throttles one server-side client by default: 150 orders in a burst, all 201', async () => {
    const statuses: number[] = [];
    for (let wave = 0; wave < 10; wave++) {
      const answers = await Promise.all(Array.from({ length: 15 }, () => request(stack.url).post('/orders').send(orderBody())));
      statuses.push(...answers.map((r) => r.status));
    }
    expect(statuses.filter((s) => s !== 201)).toEqual([]);
    const reads = await Promise.all(Array.from({ length: 150 }, () => request(stack.url).get('/orders/00000000-0000-4000-8000-000000000000')));
    expect(reads.filter((r) => r.status !== 404)).toEqual([]);
  });

  it('keeps an Idempotency-Key 24 hours: within them it replays, after them it creates a new order', async () => {
    const key = `ttl-${Math.random()}`;
    const first = await request(stack.url).post('/orders').set('Idempotency-Key', key).send(orderBody()).expect(201);
    await stack.db.query(`UPDATE idempotency_keys SET created_at = now() - interval '23 hours' WHERE key = $1`, [key]);
    expect((await request(stack.url).post('/orders').set('Idempotency-Key', key).send(orderBody()).expect(200)).body.id).toBe(first.body.id);
    await stack.db.query(`UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = $1`, [key]);
    const later = await request(stack.url).post('/orders').set('Idempotency-Key', key).send(orderBody({ customerEmail: 'later@example.com' })).expect(201);
    expect(later.body.id).not.toBe(first.body.id);
    const { rows } = await stack.db.query('SELECT order_id FROM idempotency_keys WHERE key = $1', [key]);
    expect(rows).toEqual([{ order_id: later.body.id }]);
    // The new order is what the key replays now.
    expect((await request(stack.url).post('/orders').set('Idempotency-Key', key).send(orderBody({ customerEmail: 'later@example.com' })).expect(200)).body.id).toBe(later.body.id);
  });
});

describe('Wrong admin keys and a dependency down', () => {
  let stack: TestStack;
  let redis: TestRedis;

  beforeAll(async () => {
    redis = await TestRedis.start();
    stack = await startTestStack({ env: { REDIS_URL: redis.url } });
  });
  afterAll(async () => {
    await stack?.stop();
    await redis?.down();
  });

  it('/health names the state of each dependency, never an address or a driver error', async () => {
    await redis.down();
    try {
      const down = await request(stack.url).get('/health').expect(503);
      expect(down.body).toMatchObject({ status: 'error', details: { postgres: { status: 'up' }, redis: { status: 'down' } } });
      const text = JSON.stringify(down.body);
      expect(text).not.toMatch(/127\.0\.0\.1|localhost|ECONNREFUSED|closed|message/i);
      expect(text).not.toContain(new URL(redis.url).port);
    } finally {
      await redis.up();
      // Wait until the app has reconnected, so the next test (and the shutdown) find it whole.
      await waitFor(async () => (await request(stack.url).get('/health')).status === 200 || null, 'health 200 after Redis is back');
    }
  });

  it('300 wrong admin keys from one client: 10 answered 401, the rest 429 with Retry-After, and the right key waits too', async () => {
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let wave = 0; wave < 10; wave++) {
      const answers = await Promise.all(
        Array.from({ length: 30 }, (_, i) => request(stack.url).get('/orders').set('Authorization', `Bearer guess-${wave}-${i}`)),
      );
      for (const a of answers) {
        statuses.push(a.status);
        if (a.status === 429) retryAfter = a.headers['retry-after'] ?? null;
      }
    }
    expect(statuses.filter((s) => s === 401)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(290);
    expect(Number(retryAfter)).toBeGreaterThan(0);
    expect(Number(retryAfter)).toBeLessThanOrEqual(60);
    // Blocked is blocked: a right guess now would tell the attacker nothing, and the admin waits a minute at most.
    const right = await request(stack.url).get('/orders').set(stack.admin).expect(429);
    expect(right.body).toMatchObject({ statusCode: 429, message: expect.stringMatching(/Too many wrong keys/) });
    // The same count covers the other gates (Bull Board, docs, metrics), which share it.
    await request(stack.url).get('/admin/queues').set(stack.admin).expect(429);
    await request(stack.url).get('/metrics').set(stack.admin).expect(429);
    // The public routes are not affected.
    await request(stack.url).get('/orders/00000000-0000-4000-8000-000000000000').expect(404);
  });
});
