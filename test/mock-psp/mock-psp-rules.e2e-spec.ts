import http from 'node:http';
import { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { MockPsp } from '../../src/mock-psp';
import { waitFor } from '../support/wait';

const DAY_MS = 24 * 60 * 60 * 1000;

function sdk(mock: MockPsp): Stripe {
  return new Stripe('sk_test_rules', { host: '127.0.0.1', port: mock.port, protocol: 'http', telemetry: false, maxNetworkRetries: 0 });
}

/** Event types about one PaymentIntent (itself or its charges), oldest first. */
function typesFor(mock: MockPsp, paymentIntentId: string): string[] {
  return mock
    .events()
    .filter((e) => {
      const o = e.data.object as { id?: string; payment_intent?: string };
      return o.id === paymentIntentId || o.payment_intent === paymentIntentId;
    })
    .map((e) => e.type);
}

async function charge(stripe: Stripe, pi: Stripe.PaymentIntent): Promise<Stripe.Charge> {
  return stripe.charges.retrieve(pi.latest_charge as string);
}

describe("Mock PSP: Stripe's input rules for currency and amount", () => {
  let mock: MockPsp;
  let stripe: Stripe;

  beforeAll(async () => {
    mock = await MockPsp.start({ port: 0, timeScale: 0.01 });
    stripe = sdk(mock);
  });
  afterAll(() => mock.stop());

  it('refuses an unknown currency with 400 on param currency, listing what Stripe supports, and creates nothing', async () => {
    const before = mock.sizes().paymentIntents;
    const err = await stripe.paymentIntents.create({ amount: 2000, currency: 'xyz' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(err).toMatchObject({ statusCode: 400, param: 'currency', message: expect.stringMatching(/^Invalid currency: xyz\. Stripe currently supports these currencies: usd, aed, /) });
    expect(mock.sizes().paymentIntents).toBe(before);
    // The legacy Charges API and updates keep the same rule.
    await expect(stripe.charges.create({ amount: 2000, currency: 'abc', source: 'tok_visa' })).rejects.toMatchObject({ param: 'currency' });
    const pi = await stripe.paymentIntents.create({ amount: 2000, currency: 'usd' });
    await expect(stripe.paymentIntents.update(pi.id, { currency: 'xyz' })).rejects.toMatchObject({ param: 'currency' });
    expect((await stripe.paymentIntents.retrieve(pi.id)).currency).toBe('usd');
  });

  it("refuses amounts below the currency's minimum with amount_too_small on param amount, and takes the minimum itself", async () => {
    for (const [currency, minimum, shown] of [['usd', 50, '0.50 usd'], ['gbp', 30, '0.30 gbp'], ['mxn', 1000, '10.00 mxn'], ['jpy', 50, '50 jpy'], ['huf', 17500, '175.00 huf']] as const) {
      await expect(stripe.paymentIntents.create({ amount: minimum - 1, currency })).rejects.toMatchObject({
        statusCode: 400,
        code: 'amount_too_small',
        param: 'amount',
        message: `Amount must be at least ${shown}`,
      });
      expect(await stripe.paymentIntents.create({ amount: minimum, currency })).toMatchObject({ amount: minimum, currency, status: 'requires_payment_method' });
    }
  });

  it('refuses amounts above 99999999 with amount_too_large; zero-decimal currencies count whole units', async () => {
    await expect(stripe.paymentIntents.create({ amount: 100_000_000, currency: 'usd' })).rejects.toMatchObject({ code: 'amount_too_large', param: 'amount' });
    expect(await stripe.paymentIntents.create({ amount: 99_999_999, currency: 'usd' })).toMatchObject({ amount: 99_999_999 });
    // ¥99,999,999 is the most, written as is (no minor unit), and the message says so.
    const yen = await stripe.paymentIntents.create({ amount: 5000, currency: 'jpy' });
    await expect(stripe.paymentIntents.update(yen.id, { amount: 100_000_000 })).rejects.toMatchObject({ code: 'amount_too_large', param: 'amount', message: 'Amount must be no more than 99,999,999 jpy' });
    // KRW has no listed minimum, so one won is a valid amount; KRW 1 is not "1 cent".
    expect(await stripe.paymentIntents.create({ amount: 1, currency: 'krw', payment_method: 'pm_card_visa', confirm: true })).toMatchObject({ amount: 1, status: 'succeeded' });
  });

  it('saves no answer under an Idempotency-Key for these refusals, so the corrected request can reuse the key', async () => {
    await expect(stripe.paymentIntents.create({ amount: 2000, currency: 'xyz' }, { idempotencyKey: 'rules-retry-1' })).rejects.toMatchObject({ param: 'currency' });
    await expect(stripe.paymentIntents.create({ amount: 10, currency: 'usd' }, { idempotencyKey: 'rules-retry-1' })).rejects.toMatchObject({ code: 'amount_too_small' });
    const fixed = await stripe.paymentIntents.create({ amount: 2000, currency: 'usd' }, { idempotencyKey: 'rules-retry-1' });
    expect(fixed).toMatchObject({ amount: 2000, currency: 'usd' });
    expect(fixed.lastResponse.headers['idempotent-replayed']).toBeUndefined();
  });

  it('checks an update against the amount and currency the PaymentIntent ends up with', async () => {
    const pi = await stripe.paymentIntents.create({ amount: 600, currency: 'usd' });
    await expect(stripe.paymentIntents.update(pi.id, { currency: 'mxn' })).rejects.toMatchObject({ code: 'amount_too_small', param: 'amount' });
    await expect(stripe.paymentIntents.update(pi.id, { amount: 49 })).rejects.toMatchObject({ code: 'amount_too_small' });
    expect(await stripe.paymentIntents.update(pi.id, { amount: 1000, currency: 'mxn' })).toMatchObject({ amount: 1000, currency: 'mxn' });
  });

  it('takes ISK in two-decimal form with the decimals always 00, as Stripe does', async () => {
    await expect(stripe.paymentIntents.create({ amount: 150, currency: 'isk' })).rejects.toMatchObject({ param: 'amount', statusCode: 400 });
    expect(await stripe.paymentIntents.create({ amount: 500, currency: 'isk' })).toMatchObject({ amount: 500, currency: 'isk' });
  });
});

describe('Mock PSP: manual capture', () => {
  let mock: MockPsp;
  let stripe: Stripe;
  const timeScale = 0.01;

  beforeAll(async () => {
    mock = await MockPsp.start({ port: 0, timeScale });
    stripe = sdk(mock);
  });
  afterAll(() => mock.stop());

  const authorize = (amount = 2000, extra: Partial<Stripe.PaymentIntentCreateParams> = {}) =>
    stripe.paymentIntents.create({ amount, currency: 'usd', capture_method: 'manual', payment_method: 'pm_card_visa', confirm: true, ...extra });

  it('authorizes: requires_capture, amount_capturable, an uncaptured charge with capture_before at the end of the scaled 7-day window', async () => {
    const startedAt = Date.now();
    const pi = await authorize();
    expect(pi).toMatchObject({ status: 'requires_capture', capture_method: 'manual', amount_capturable: 2000, amount_received: 0 });
    const ch = await charge(stripe, pi);
    expect(ch).toMatchObject({ status: 'succeeded', paid: true, captured: false, amount: 2000, amount_captured: 0 });
    const captureBefore = ch.payment_method_details?.card?.capture_before as number;
    const expected = (startedAt + 7 * DAY_MS * timeScale) / 1000;
    expect(captureBefore).toBeGreaterThanOrEqual(Math.floor(expected) - 1);
    expect(captureBefore).toBeLessThanOrEqual(Math.ceil(expected) + 5);
    expect(typesFor(mock, pi.id)).toEqual(['payment_intent.created', 'charge.succeeded', 'payment_intent.amount_capturable_updated']);
    // The authorization event carries the capturable amount, as the backend reads it.
    const capturable = mock.events().find((e) => e.type === 'payment_intent.amount_capturable_updated' && (e.data.object as Stripe.PaymentIntent).id === pi.id);
    expect(capturable?.data.object).toMatchObject({ status: 'requires_capture', amount_capturable: 2000 });
  });

  it('captures all: succeeded, charge.captured then payment_intent.succeeded; a second capture answers payment_intent_unexpected_state', async () => {
    const pi = await authorize();
    const captured = await stripe.paymentIntents.capture(pi.id);
    expect(captured).toMatchObject({ status: 'succeeded', amount_received: 2000, amount_capturable: 0 });
    expect(await charge(stripe, pi)).toMatchObject({ captured: true, amount_captured: 2000, amount_refunded: 0, refunded: false });
    expect(typesFor(mock, pi.id).slice(3)).toEqual(['charge.captured', 'payment_intent.succeeded']);
    const again = await stripe.paymentIntents.capture(pi.id).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(again).toMatchObject({ statusCode: 400, code: 'payment_intent_unexpected_state', message: expect.stringContaining('status of succeeded') });
    expect(typesFor(mock, pi.id)).toHaveLength(5);
  });

  it('captures part with amount_to_capture: the rest is released (amount_capturable 0, charge amount_captured below amount)', async () => {
    const pi = await authorize(2000);
    await expect(stripe.paymentIntents.capture(pi.id, { amount_to_capture: 2001 })).rejects.toMatchObject({ code: 'amount_too_large', param: 'amount_to_capture' });
    const captured = await stripe.paymentIntents.capture(pi.id, { amount_to_capture: 1500 });
    expect(captured).toMatchObject({ status: 'succeeded', amount: 2000, amount_received: 1500, amount_capturable: 0 });
    const ch = await charge(stripe, pi);
    expect(ch).toMatchObject({ captured: true, amount: 2000, amount_captured: 1500, amount_refunded: 500, refunded: false });
    const capturedEvent = mock.events().find((e) => e.type === 'charge.captured' && (e.data.object as Stripe.Charge).id === ch.id);
    expect(capturedEvent?.data.object).toMatchObject({ amount_captured: 1500, amount_refunded: 500 });
    // What was captured can be refunded, no more.
    await expect(stripe.refunds.create({ payment_intent: pi.id, amount: 1501 })).rejects.toMatchObject({ code: 'amount_too_large' });
    // A part of what was captured leaves the charge not fully refunded, and a dispute can only take what is left.
    expect(await stripe.refunds.create({ payment_intent: pi.id, amount: 1000 })).toMatchObject({ amount: 1000, status: 'succeeded' });
    expect(await charge(stripe, pi)).toMatchObject({ amount_refunded: 1500, refunded: false });
    expect(await stripe.refunds.create({ payment_intent: pi.id })).toMatchObject({ amount: 500, status: 'succeeded' });
    expect(await charge(stripe, pi)).toMatchObject({ amount_refunded: 2000, refunded: true });
    await expect(stripe.paymentIntents.capture(pi.id, { amount_to_capture: 100 })).rejects.toMatchObject({ code: 'payment_intent_unexpected_state' });
  });

  it('treats capture_method=automatic_async like automatic: captured at confirmation', async () => {
    const pi = await stripe.paymentIntents.create({ amount: 2000, currency: 'usd', capture_method: 'automatic_async', payment_method: 'pm_card_visa', confirm: true });
    expect(pi).toMatchObject({ status: 'succeeded', amount_received: 2000, amount_capturable: 0 });
    expect(await charge(stripe, pi)).toMatchObject({ captured: true, amount_captured: 2000 });
    await expect(stripe.paymentIntents.capture(pi.id)).rejects.toMatchObject({ code: 'payment_intent_unexpected_state' });
  });

  it('voids on cancel: the authorization is released in full (charge.refunded), then payment_intent.canceled; no capture after', async () => {
    const windowsBefore = mock.sizes().authorizationWindows;
    const pi = await authorize();
    expect(mock.sizes().authorizationWindows).toBe(windowsBefore + 1);
    const canceled = await stripe.paymentIntents.cancel(pi.id, { cancellation_reason: 'requested_by_customer' });
    expect(canceled).toMatchObject({ status: 'canceled', cancellation_reason: 'requested_by_customer', amount_capturable: 0, amount_received: 0 });
    expect(await charge(stripe, pi)).toMatchObject({ captured: false, amount_refunded: 2000, refunded: true });
    expect(typesFor(mock, pi.id).slice(3)).toEqual(['charge.refunded', 'payment_intent.canceled']);
    expect(mock.sizes().authorizationWindows).toBe(windowsBefore);
    await expect(stripe.paymentIntents.capture(pi.id)).rejects.toMatchObject({ code: 'payment_intent_unexpected_state' });
  });

  it('does not make idle() wait for an open capture window (days of mock time)', async () => {
    await authorize();
    expect(mock.sizes().authorizationWindows).toBeGreaterThan(0);
    await expect(mock.idle(2000)).resolves.toBeUndefined();
  });

  it('gives a legacy uncaptured charge (capture=false) the same window, and captures it by charge', async () => {
    const ch = await stripe.charges.create({ amount: 3000, currency: 'usd', source: 'tok_visa', capture: false });
    expect(ch).toMatchObject({ captured: false });
    expect(ch.payment_method_details?.card?.capture_before).toEqual(expect.any(Number));
    expect(await stripe.charges.capture(ch.id, { amount: 2500 })).toMatchObject({ captured: true, amount_captured: 2500, amount_refunded: 500 });
  });
});

describe('Mock PSP: authorization expiry', () => {
  // 7 days become about 1.2 s.
  const timeScale = 2e-6;
  let mock: MockPsp;
  let stripe: Stripe;

  beforeAll(async () => {
    mock = await MockPsp.start({ port: 0, timeScale });
    stripe = sdk(mock);
  });
  afterAll(() => mock.stop());

  it('cancels an uncaptured PaymentIntent at the end of the window: reason automatic, charge.expired then payment_intent.canceled; a captured one is left alone', async () => {
    const lapsing = await stripe.paymentIntents.create({ amount: 2000, currency: 'usd', capture_method: 'manual', payment_method: 'pm_card_visa', confirm: true });
    const kept = await stripe.paymentIntents.create({ amount: 2000, currency: 'usd', capture_method: 'manual', payment_method: 'pm_card_visa', confirm: true });
    await stripe.paymentIntents.capture(kept.id);
    const captureBefore = (await charge(stripe, lapsing)).payment_method_details?.card?.capture_before as number;
    expect(captureBefore * 1000).toBeLessThanOrEqual(Date.now() + 7 * DAY_MS * timeScale + 1000);

    const expired = await waitFor(async () => {
      const pi = await stripe.paymentIntents.retrieve(lapsing.id);
      return pi.status === 'canceled' ? pi : undefined;
    }, 'the authorization to lapse', 10_000) as Stripe.PaymentIntent;
    expect(expired).toMatchObject({ status: 'canceled', cancellation_reason: 'automatic', amount_capturable: 0, amount_received: 0 });
    expect(expired.canceled_at).toEqual(expect.any(Number));
    expect(await charge(stripe, lapsing)).toMatchObject({ captured: false, refunded: true, amount_refunded: 2000 });
    expect(typesFor(mock, lapsing.id)).toEqual(['payment_intent.created', 'charge.succeeded', 'payment_intent.amount_capturable_updated', 'charge.expired', 'payment_intent.canceled']);
    const lapseEvents = mock.events().filter((e) => e.type === 'charge.expired' || (e.type === 'payment_intent.canceled' && (e.data.object as Stripe.PaymentIntent).id === lapsing.id));
    expect(lapseEvents.every((e) => e.request?.id === null)).toBe(true);
    await expect(stripe.paymentIntents.capture(lapsing.id)).rejects.toMatchObject({ code: 'payment_intent_unexpected_state' });

    expect((await stripe.paymentIntents.retrieve(kept.id)).status).toBe('succeeded');
    expect(typesFor(mock, kept.id)).not.toContain('charge.expired');
    expect(mock.sizes().authorizationWindows).toBe(0);
  });

  it('clears open windows on stop, so nothing lapses afterwards', async () => {
    const other = await MockPsp.start({ port: 0, timeScale });
    const client = sdk(other);
    await client.paymentIntents.create({ amount: 2000, currency: 'usd', capture_method: 'manual', payment_method: 'pm_card_visa', confirm: true });
    expect(other.sizes().authorizationWindows).toBe(1);
    await other.stop();
    expect(other.sizes().authorizationWindows).toBe(0);
    const eventsAtStop = other.events().length;
    await new Promise((resolve) => setTimeout(resolve, 7 * DAY_MS * timeScale + 300));
    expect(other.events().length).toBe(eventsAtStop);
  });
});

describe('Mock PSP: retention (idempotency keys 24 h, events 30 days, scaled)', () => {
  it('forgets an idempotency key 24 scaled hours after its first use: the same key then creates a new object', async () => {
    // 24 hours become about 0.86 s.
    const mock = await MockPsp.start({ port: 0, timeScale: 1e-5 });
    try {
      const stripe = sdk(mock);
      const params = { amount: 2000, currency: 'usd' };
      const first = await stripe.paymentIntents.create(params, { idempotencyKey: 'order-42' });
      const replay = await stripe.paymentIntents.create(params, { idempotencyKey: 'order-42' });
      expect(replay.id).toBe(first.id);
      expect(replay.lastResponse.headers['idempotent-replayed']).toBe('true');
      expect(mock.sizes().idempotencyKeys).toBe(1);

      await waitFor(async () => mock.sizes().idempotencyKeys === 0, 'the key to be swept', 10_000);
      const later = await stripe.paymentIntents.create(params, { idempotencyKey: 'order-42' });
      expect(later.id).not.toBe(first.id);
      expect(later.lastResponse.headers['idempotent-replayed']).toBeUndefined();
      // The old object is still there: only the key expired.
      expect((await stripe.paymentIntents.retrieve(first.id)).id).toBe(first.id);
    } finally {
      await mock.stop();
    }
  });

  it('keeps events 30 scaled days: older ones leave the Events list and retrieve answers 404; settled objects go with them', async () => {
    // 30 days become about 2.6 s (and 24 hours about 86 ms). Webhooks go to a receiver, so delivery records exist too.
    const receiver = http.createServer((req, res) => req.resume().on('end', () => res.writeHead(200).end()));
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const forwardTo = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhooks`;
    const mock = await MockPsp.start({ port: 0, timeScale: 1e-6, forwardTo });
    try {
      const stripe = sdk(mock);
      const old = await stripe.paymentIntents.create({ amount: 2000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
      const oldEvents = mock.events().map((e) => e.id);
      expect(oldEvents).toHaveLength(3);
      expect((await stripe.events.retrieve(oldEvents[0])).id).toBe(oldEvents[0]);
      await waitFor(async () => oldEvents.every((id) => mock.deliveryState(id)?.delivered), 'the old events to be delivered');

      // Events go at their emission time; objects by their `created` second, so up to a second later.
      await waitFor(async () => mock.events().length === 0 && mock.sizes().paymentIntents === 0, 'the old events and objects to be swept', 15_000);
      const fresh = await stripe.paymentIntents.create({ amount: 2000, currency: 'usd' });
      const listed = (await stripe.events.list({ limit: 100 })).data.map((e) => e.id);
      expect(listed).toHaveLength(1);
      expect(listed.some((id) => oldEvents.includes(id))).toBe(false);
      expect((await stripe.events.retrieve(listed[0])).data.object).toMatchObject({ id: fresh.id });
      for (const id of oldEvents) {
        await expect(stripe.events.retrieve(id)).rejects.toMatchObject({ statusCode: 404, code: 'resource_missing' });
      }
      // The succeeded PaymentIntent, its charge and its one-time PaymentMethod were forgotten as well.
      await expect(stripe.paymentIntents.retrieve(old.id)).rejects.toMatchObject({ statusCode: 404 });
      await expect(stripe.charges.retrieve(old.latest_charge as string)).rejects.toMatchObject({ statusCode: 404 });
      expect(mock.sizes()).toMatchObject({ paymentIntents: 1, charges: 0, paymentMethods: 0 });
      expect(oldEvents.map((id) => mock.deliveryState(id))).toEqual([undefined, undefined, undefined]);
    } finally {
      await mock.stop();
      await new Promise((resolve) => receiver.close(resolve));
    }
  });
});
