import http from 'node:http';
import request from 'supertest';
import Stripe from 'stripe';
import { Logger } from '@nestjs/common';
import { NestExpressApplication } from '@nestjs/platform-express';
import { trustFunction } from '../../src/config/trust-proxy';
import { Metrics } from '../../src/metrics/metrics';
import { signedHeader } from '../support/child-stack';
import { orderBody, startTestStack, TestStack } from '../support/test-app';
import { waitFor } from '../support/wait';

/**
 * The webhook route's outer gate over real HTTP: WEBHOOK_ALLOWED_IPS,
 * TRUST_PROXY and the throttle of senders of unverifiable deliveries. Linux
 * routes all of 127/8 to the loopback interface, so a request sent from
 * 127.0.0.2 (http.request's localAddress) arrives from another client address.
 */

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: { statusCode?: number; error?: string; message?: string; received?: boolean };
}

/** POST /webhooks/stripe from a chosen local address, with optional extra headers. */
function deliver(baseUrl: string, from: string, payload: string, headers: Record<string, string> = {}, agent?: http.Agent): Promise<Answer> {
  const url = new URL('/webhooks/stripe', baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        ...(agent ? { agent } : { localAddress: from, agent: false }),
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : {} });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** A keep-alive agent whose connections all leave from `from`. */
const agentFrom = (from: string, maxSockets = 8) => new http.Agent({ keepAlive: true, maxSockets, localAddress: from });

let seq = 0;
function fakeEvent(): string {
  seq++;
  return JSON.stringify({ id: `evt_gate_${process.pid}_${seq}_${Date.now()}`, object: 'event', type: 'customer.created', created: Math.floor(Date.now() / 1000), data: { object: { id: 'cus_1', object: 'customer' } } });
}

/** A delivery that fails verification but looks like a real one: fresh t=, a v1 of the right length, signed with someone else's secret. */
function junk(): { payload: string; signature: string } {
  const payload = fakeEvent();
  return { payload, signature: signedHeader(payload, { secret: 'whsec_attacker_guess' }) };
}

/** A counter of the stack's own Metrics (injected, one per app). */
async function counter(stack: TestStack, name: 'webhooksRejected' | 'webhookSendersThrottled', reason?: string): Promise<number> {
  const { values } = await stack.app.get(Metrics)[name].get();
  return values.filter((v) => reason === undefined || v.labels.reason === reason).reduce((sum, v) => sum + v.value, 0);
}

const storedCount = async (stack: TestStack) => Number((await stack.db.query('SELECT count(*) AS n FROM webhook_events')).rows[0].n);
const stored = async (stack: TestStack, payload: string) =>
  (await stack.db.query('SELECT count(*) AS n FROM webhook_events WHERE id = $1', [JSON.parse(payload).id])).rows[0].n === '1';

/** A real order paid at the mock, with the mock's events for it (collected, not delivered). */
async function paidOrder(stack: TestStack): Promise<{ id: string; events: Stripe.Event[] }> {
  const order = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body;
  const before = stack.mock.events().length;
  await stack.stripe.paymentIntents.confirm(order.payment.id, { payment_method: 'pm_card_visa' });
  const events = stack.mock.events().slice(before).filter((e) => JSON.stringify(e.data.object).includes(order.payment.id));
  return { id: order.id, events };
}

const orderStatus = async (stack: TestStack, id: string) => (await request(stack.url).get(`/orders/${id}`).expect(200)).body.status as string;

describe('webhook gate: WEBHOOK_ALLOWED_IPS with TRUST_PROXY off (the default)', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ env: { WEBHOOK_ALLOWED_IPS: '127.0.0.2' }, forwardWebhooks: false });
  });
  afterAll(async () => stack?.stop());

  it('answers 403 to an address outside the list, before verifying, and stores nothing', async () => {
    const before = await storedCount(stack);
    const refusedBefore = await counter(stack, 'webhooksRejected', 'not_allowed');
    const payload = fakeEvent();
    // Correctly signed: only the address is wrong.
    const answer = await deliver(stack.url, '127.0.0.1', payload, { 'stripe-signature': signedHeader(payload) });
    expect(answer.status).toBe(403);
    expect(answer.body).toEqual({ statusCode: 403, error: 'Forbidden', message: expect.stringContaining('127.0.0.1') });
    expect(await storedCount(stack)).toBe(before);
    expect(await counter(stack, 'webhooksRejected', 'not_allowed')).toBe(refusedBefore + 1);
  });

  it('refuses before reading or verifying: an unsigned, non-JSON body from outside is a 403 too, not a 400', async () => {
    const answer = await deliver(stack.url, '127.0.0.3', 'not json at all');
    expect(answer.status).toBe(403);
  });

  it('accepts a signed delivery from an address on the list (2xx, stored, applied)', async () => {
    const order = await paidOrder(stack);
    expect(order.events.length).toBeGreaterThan(0);
    for (const event of order.events) {
      const payload = JSON.stringify(event);
      const answer = await deliver(stack.url, '127.0.0.2', payload, { 'stripe-signature': signedHeader(payload) });
      expect(answer.status).toBe(200);
      expect(await stored(stack, payload)).toBe(true);
    }
    await waitFor(async () => (await orderStatus(stack, order.id)) === 'paid', 'order paid');
  });

  it('a forged X-Forwarded-For changes nothing: outside stays 403, inside stays 2xx', async () => {
    const before = await storedCount(stack);
    const outside = fakeEvent();
    const forgedIn = await deliver(stack.url, '127.0.0.1', outside, { 'stripe-signature': signedHeader(outside), 'x-forwarded-for': '127.0.0.2' });
    expect(forgedIn.status).toBe(403);
    expect(await storedCount(stack)).toBe(before);

    const inside = fakeEvent();
    const forgedOut = await deliver(stack.url, '127.0.0.2', inside, { 'stripe-signature': signedHeader(inside), 'x-forwarded-for': '203.0.113.9' });
    expect(forgedOut.status).toBe(200);
    expect(await stored(stack, inside)).toBe(true);
  });

  it('logs a refused address once a minute, however many deliveries it sends', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn');
    try {
      for (const from of ['127.0.0.6', '127.0.0.7']) {
        for (let i = 0; i < 5; i++) expect((await deliver(stack.url, from, fakeEvent())).status).toBe(403);
      }
      const lines = warn.mock.calls.map(([line]) => line as { msg?: string; address?: string }).filter((line) => line.msg?.startsWith('webhook refused: address not in'));
      expect(lines.map((line) => line.address)).toEqual(['127.0.0.6', '127.0.0.7']);
    } finally {
      warn.mockRestore();
    }
  });

  it('other routes are not behind the webhook allowlist', async () => {
    await request(stack.url).get('/health').expect((res) => expect(res.status).not.toBe(403));
  });
});

describe('webhook gate: TRUST_PROXY=loopback', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ env: { TRUST_PROXY: 'loopback', WEBHOOK_ALLOWED_IPS: '203.0.113.7,2001:db8::/32' }, forwardWebhooks: false });
  });
  afterAll(async () => stack?.stop());

  it('takes the client address from X-Forwarded-For sent by a trusted (loopback) proxy', async () => {
    const payload = fakeEvent();
    const answer = await deliver(stack.url, '127.0.0.1', payload, { 'stripe-signature': signedHeader(payload), 'x-forwarded-for': '203.0.113.7' });
    expect(answer.status).toBe(200);
    expect(await stored(stack, payload)).toBe(true);

    const v6 = fakeEvent();
    const fromV6 = await deliver(stack.url, '127.0.0.1', v6, { 'stripe-signature': signedHeader(v6), 'x-forwarded-for': '2001:db8::42' });
    expect(fromV6.status).toBe(200);
  });

  it('refuses the forwarded address when it is outside the list, and the proxy itself without X-Forwarded-For', async () => {
    const before = await storedCount(stack);
    const outside = fakeEvent();
    const forwarded = await deliver(stack.url, '127.0.0.1', outside, { 'stripe-signature': signedHeader(outside), 'x-forwarded-for': '198.51.100.1' });
    expect(forwarded.status).toBe(403);
    expect(forwarded.body.message).toContain('198.51.100.1');
    const direct = fakeEvent();
    expect((await deliver(stack.url, '127.0.0.1', direct, { 'stripe-signature': signedHeader(direct) })).status).toBe(403);
    expect(await storedCount(stack)).toBe(before);
  });

  it('believes only trusted hops: an address the client put before the proxy chain is not used', async () => {
    // The client (198.51.100.1, untrusted) claims to forward for 203.0.113.7; the loopback proxy appends the client it saw.
    const payload = fakeEvent();
    const answer = await deliver(stack.url, '127.0.0.1', payload, { 'stripe-signature': signedHeader(payload), 'x-forwarded-for': '203.0.113.7, 198.51.100.1' });
    expect(answer.status).toBe(403);
  });

  it('Express (req.ip, the order routes) uses the very function the webhook route does', () => {
    const express = (stack.app as NestExpressApplication).getHttpAdapter().getInstance();
    expect(express.get('trust proxy fn')).toBe(trustFunction(stack.config));
  });
});

describe('webhook gate: throttling senders of deliveries that fail verification (WEBHOOK_REFUSED_PER_MINUTE default 60)', () => {
  let stack: TestStack;
  let verifications: jest.SpyInstance;
  beforeAll(async () => {
    stack = await startTestStack({ forwardWebhooks: false });
    // The handler verifies with the SDK's static webhooks (the object every Stripe instance shares).
    verifications = jest.spyOn(Stripe.webhooks, 'constructEvent');
  });
  afterAll(async () => {
    verifications?.mockRestore();
    await stack?.stop();
  });

  it('the default limit is 60 a minute', () => {
    expect(stack.config.webhookRefusedPerMinute).toBe(60);
  });

  it('verified deliveries never count: 100 valid ones, then 60 junk ones still get 400 before the first 429', async () => {
    const agent = agentFrom('127.0.0.5');
    try {
      for (let i = 0; i < 100; i++) {
        const payload = fakeEvent();
        expect((await deliver(stack.url, '127.0.0.5', payload, { 'stripe-signature': signedHeader(payload) }, agent)).status).toBe(200);
      }
      const statuses: number[] = [];
      for (let i = 0; i < 61; i++) {
        const { payload, signature } = junk();
        statuses.push((await deliver(stack.url, '127.0.0.5', payload, { 'stripe-signature': signature }, agent)).status);
      }
      expect(statuses.slice(0, 60).every((s) => s === 400)).toBe(true);
      expect(statuses[60]).toBe(429);
    } finally {
      agent.destroy();
    }
  });

  it('200 junk deliveries from one address get 429 after the limit, without an HMAC, while genuine events from another address are all 2xx and applied', async () => {
    const throttledBefore = await counter(stack, 'webhooksRejected', 'throttled');
    const sendersBefore = await counter(stack, 'webhookSendersThrottled');
    const orders = [];
    for (let i = 0; i < 8; i++) orders.push(await paidOrder(stack));
    const genuine = orders.flatMap((o) => o.events);
    const storedBefore = await storedCount(stack);
    verifications.mockClear();

    // The junk comes over 40 connections at once: a throttled sender's 429 is held back a second (the tarpit).
    const junkConnections = 40;
    const junkAgent = agentFrom('127.0.0.3', junkConnections);
    const genuineAgent = agentFrom('127.0.0.4');
    const junkStatuses: number[] = [];
    const began = Date.now();
    let junkSent = 0;
    const junkLoop = async () => {
      while (junkSent < 200) {
        junkSent++;
        const { payload, signature } = junk();
        const answer = await deliver(stack.url, '127.0.0.3', payload, { 'stripe-signature': signature }, junkAgent);
        junkStatuses.push(answer.status);
        if (answer.status === 429) {
          const retryAfter = Number(answer.headers['retry-after']);
          expect(retryAfter).toBeGreaterThanOrEqual(1);
          expect(retryAfter).toBeLessThanOrEqual(60);
          expect(answer.body).toMatchObject({ statusCode: 429, error: 'Too Many Requests' });
        }
      }
    };
    const junkRun = Promise.all(Array.from({ length: junkConnections }, junkLoop));
    // The genuine deliveries run beside the junk, each as soon as the previous one is answered.
    const genuineRun = (async () => {
      const statuses: number[] = [];
      for (const event of genuine) {
        const payload = JSON.stringify(event);
        statuses.push((await deliver(stack.url, '127.0.0.4', payload, { 'stripe-signature': signedHeader(payload) }, genuineAgent)).status);
      }
      return statuses;
    })();
    const [genuineStatuses] = await Promise.all([genuineRun, junkRun]);
    junkAgent.destroy();
    genuineAgent.destroy();

    expect(genuineStatuses).toEqual(genuine.map(() => 200));
    for (const order of orders) await waitFor(async () => (await orderStatus(stack, order.id)) === 'paid', `order ${order.id} paid`);
    expect(await storedCount(stack)).toBe(storedBefore + genuine.length);

    // 60 are verified and refused (400), plus those already admitted when the 60th failed (at most one a connection),
    // plus a probe verified at most once a second; all the others are 429.
    const seconds = Math.ceil((Date.now() - began) / 1000);
    const throttled = junkStatuses.filter((s) => s === 429).length;
    const refused = junkStatuses.filter((s) => s === 400).length;
    expect(throttled + refused).toBe(200);
    expect(refused).toBeGreaterThanOrEqual(60);
    expect(refused).toBeLessThanOrEqual(60 + junkConnections + seconds);
    expect(throttled).toBeGreaterThanOrEqual(200 - (60 + junkConnections + seconds));
    // An HMAC was computed for every 400 and every genuine event, never for a 429.
    expect(verifications).toHaveBeenCalledTimes(refused + genuine.length);
    expect(await counter(stack, 'webhooksRejected', 'throttled')).toBe(throttledBefore + throttled);
    expect(await counter(stack, 'webhookSendersThrottled')).toBe(sendersBefore + 1);
  });

  it('a throttled address that sends valid deliveries again gets them all through (a verified probe lifts the throttle)', async () => {
    const agent = agentFrom('127.0.0.3');
    try {
      // Still throttled from the previous test (an unsigned request is never a probe).
      expect((await deliver(stack.url, '127.0.0.3', fakeEvent(), {}, agent)).status).toBe(429);
      // A probe is allowed a second after the last one: the first valid delivery gets through within about a second.
      const first = fakeEvent();
      const answer = await waitFor(async () => {
        const res = await deliver(stack.url, '127.0.0.3', first, { 'stripe-signature': signedHeader(first) }, agent);
        return res.status === 429 ? null : res;
      }, 'the first valid delivery let through', 10_000, 100);
      expect(answer?.status).toBe(200);
      for (let i = 0; i < 30; i++) {
        const payload = fakeEvent();
        const res = await deliver(stack.url, '127.0.0.3', payload, { 'stripe-signature': signedHeader(payload) }, agent);
        expect(res.status).toBe(200);
        expect(await stored(stack, payload)).toBe(true);
      }
      // Its failures of this minute are remembered: one more junk delivery throttles it again at once.
      const again = junk();
      expect((await deliver(stack.url, '127.0.0.3', again.payload, { 'stripe-signature': again.signature }, agent)).status).toBe(400);
      const more = junk();
      expect((await deliver(stack.url, '127.0.0.3', more.payload, { 'stripe-signature': more.signature }, agent)).status).toBe(429);
    } finally {
      agent.destroy();
    }
  });

  it('a throttled address gets 429 even for a body that would otherwise be refused unread (no signature at all), held back a second', async () => {
    const began = Date.now();
    const answer = await deliver(stack.url, '127.0.0.3', 'junk');
    expect(answer.status).toBe(429);
    expect(answer.headers['retry-after']).toMatch(/^\d+$/);
    expect(Date.now() - began).toBeGreaterThanOrEqual(900);
  });
});
