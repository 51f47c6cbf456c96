import request from 'supertest';
import { startTestStack, TestStack } from '../support/test-app';
import { TestRedis } from '../support/redis-server';

describe('Operations: docs, metrics, queue board, rate limits', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack({ env: { RATE_LIMIT_PER_MINUTE: '5' } });
  });
  afterAll(async () => stack?.stop());

  it('serves OpenAPI generated from the DTOs, with examples and the admin auth scheme', async () => {
    const doc = (await request(stack.url).get('/docs-json').set(stack.admin).expect(200)).body;
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.components.securitySchemes.admin).toMatchObject({ type: 'http', scheme: 'bearer' });
    const create = doc.paths['/orders'].post;
    expect(create.requestBody.content['application/json'].schema.$ref).toBe('#/components/schemas/CreateOrderDto');
    expect(doc.components.schemas.CreateOrderDto.properties.currency.example).toBe('usd');
    expect(doc.components.schemas.OrderItemDto.required).toEqual(expect.arrayContaining(['sku', 'name', 'unitAmount', 'quantity']));
    expect(Object.keys(create.responses)).toEqual(expect.arrayContaining(['200', '201', '400', '422']));
    expect(doc.paths['/orders'].get.security).toEqual([{ admin: [] }]);
    expect(doc.paths['/orders/{id}/refunds'].post.security).toEqual([{ admin: [] }]);
    expect(doc.paths['/orders/{id}'].get.security).toBeUndefined();
    await request(stack.url).get('/docs').set(stack.admin).expect(200).expect('Content-Type', /html/);
  });

  it('exposes Prometheus metrics, including queue and inbox gauges read at scrape time', async () => {
    const res = await request(stack.url).get('/metrics').set(stack.admin).expect(200).expect('Content-Type', /text\/plain/);
    for (const name of [
      'settle_webhooks_received_total',
      'settle_webhooks_rejected_total',
      'settle_webhooks_duplicate_total',
      'settle_event_processing_seconds',
      'settle_order_transitions_total',
      'settle_reconciler_passes_total',
      'settle_psp_call_seconds',
      'settle_inbox_lag_seconds',
    ]) {
      expect(res.text).toContain(`# TYPE ${name}`);
    }
    expect(res.text).toMatch(/settle_queue_jobs\{state="waiting"\} \d+/);
    expect(res.text).toMatch(/settle_queue_jobs\{state="dead"\} \d+/);
  });

  it('counts PSP calls by operation', async () => {
    await request(stack.url).post('/orders').send({ currency: 'usd', items: [{ sku: 'A', name: 'A', unitAmount: 500, quantity: 1 }], customerEmail: 'm@example.com' }).expect(201);
    const res = await request(stack.url).get('/metrics').set(stack.admin).expect(200);
    expect(res.text).toMatch(/settle_psp_call_seconds_count\{operation="create_payment_intent",result="ok"\} [1-9]/);
  });

  it('puts Bull Board at /admin/queues behind the admin key (Bearer, or Basic for browsers)', async () => {
    await request(stack.url).get('/admin/queues').expect(401).expect('WWW-Authenticate', /Basic/);
    await request(stack.url).get('/admin/queues').set('Authorization', 'Bearer wrong').expect(401);
    const page = await request(stack.url).get('/admin/queues').set(stack.admin).expect(200);
    expect(page.text).toMatch(/<html/i);
    const basic = Buffer.from(`admin:${stack.config.adminApiKey}`).toString('base64');
    const api = await request(stack.url).get('/admin/queues/api/queues').set('Authorization', `Basic ${basic}`).expect(200);
    expect(JSON.stringify(api.body)).toContain('webhook-events');
  });

  it('rate-limits the public order routes per client with 429 and Retry-After, but not the webhook route', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await request(stack.url).get('/orders/00000000-0000-4000-8000-000000000000')).status);
    expect(statuses.filter((s) => s === 404).length).toBeGreaterThan(0);
    expect(statuses.slice(-2)).toEqual([429, 429]);
    const limited = await request(stack.url).get('/orders/00000000-0000-4000-8000-000000000000').expect(429);
    expect(limited.headers['retry-after']).toMatch(/^\d+$/);
    expect(limited.body).toMatchObject({ statusCode: 429, error: 'Too Many Requests', message: expect.stringMatching(/at most 5 a minute/) });
    // Stripe sends bursts: the webhook route answers on its own terms (400 for an unsigned body), never 429.
    for (let i = 0; i < 10; i++) {
      const res = await request(stack.url).post('/webhooks/stripe').set('Content-Type', 'application/json').send('{}');
      expect(res.status).toBe(400);
    }
  });
});

describe('Health', () => {
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

  it('is 200 with both dependencies up, 503 naming Redis while it is down, and 200 again after', async () => {
    const up = await request(stack.url).get('/health').expect(200);
    expect(up.body).toMatchObject({ status: 'ok', details: { postgres: { status: 'up' }, redis: { status: 'up' } } });
    await request(stack.url).get('/health/ready').expect(200);

    await redis.down();
    const down = await request(stack.url).get('/health').expect(503);
    expect(down.body.status).toBe('error');
    expect(down.body.details.postgres.status).toBe('up');
    expect(down.body.details.redis.status).toBe('down');
    await request(stack.url).get('/health/ready').expect(503);

    await redis.up();
    const deadline = Date.now() + 10000;
    let status = 0;
    while (Date.now() < deadline && status !== 200) {
      status = (await request(stack.url).get('/health')).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(200);
  });
});
