import Stripe from 'stripe';
import { MockPsp } from '../../src/mock-psp';
import { waitFor } from '../support/wait';
import { mockSdk, VerifyingReceiver } from './support';

/**
 * Checkout Sessions through the official SDK: the API, its input rules, and
 * the events of each way a customer can pay. The hosted page is driven here
 * with plain HTTP (its forms, no browser); checkout-page.e2e-spec.ts drives
 * it in Chromium.
 */

const SECRET = 'whsec_checkout_suite';
// 30 minutes of mock time is 1.8 s: the shortest session Stripe allows expires within a test.
const TIME_SCALE = 0.001;

describe('Checkout Sessions on the mock PSP', () => {
  let mock: MockPsp;
  let stripe: Stripe;
  const receiver = new VerifyingReceiver();

  beforeAll(async () => {
    receiver.secret = SECRET;
    const forwardTo = await receiver.start();
    mock = await MockPsp.start({ port: 0, webhookSecret: SECRET, timeScale: TIME_SCALE, forwardTo });
    stripe = mockSdk(mock);
  });
  afterAll(async () => {
    await mock.stop();
    await receiver.stop();
  });

  const newSession = (extra: Partial<Stripe.Checkout.SessionCreateParams> = {}) =>
    stripe.checkout.sessions.create({
      mode: 'payment',
      line_items: [
        { price_data: { currency: 'usd', unit_amount: 1299, product_data: { name: 'Blue mug' } }, quantity: 2 },
        { price_data: { currency: 'usd', unit_amount: 500, product_data: { name: 'Gift wrap' } }, quantity: 1 },
      ],
      success_url: 'https://shop.example/thanks?session={CHECKOUT_SESSION_ID}',
      cancel_url: 'https://shop.example/cart',
      client_reference_id: 'order-42',
      customer_email: 'jenny@example.com',
      metadata: { order_id: 'order-42' },
      payment_intent_data: { metadata: { order_id: 'order-42' } },
      ...extra,
    });

  /** Events about one session or its PaymentIntent, oldest first. */
  const typesFor = (session: { id: string }, piId?: string | null) =>
    mock
      .events()
      .filter((e) => {
        const o = e.data.object as { id?: string; payment_intent?: string };
        return o.id === session.id || (piId && (o.id === piId || o.payment_intent === piId));
      })
      .map((e) => e.type);

  /** Posts one of the hosted page's forms as a browser would, without following the redirect. */
  async function submit(sessionId: string, step: '' | 'authenticate' | 'bank', fields: Record<string, string>): Promise<string> {
    const res = await fetch(`${mock.url}/c/pay/${sessionId}${step ? `/${step}` : ''}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
      redirect: 'manual',
    });
    expect(res.status).toBe(303);
    return res.headers.get('location') as string;
  }

  describe('the API', () => {
    it('creates a session shaped as Stripe\'s, with no PaymentIntent yet and no event', async () => {
      const before = mock.events().length;
      const now = Math.floor(Date.now() / 1000);
      const session = await newSession();
      expect(session.id).toMatch(/^cs_test_\w{58}$/);
      expect(session).toMatchObject({
        object: 'checkout.session',
        mode: 'payment',
        status: 'open',
        payment_status: 'unpaid',
        payment_intent: null,
        amount_total: 2 * 1299 + 500,
        amount_subtotal: 2 * 1299 + 500,
        currency: 'usd',
        client_reference_id: 'order-42',
        customer_email: 'jenny@example.com',
        metadata: { order_id: 'order-42' },
        success_url: 'https://shop.example/thanks?session={CHECKOUT_SESSION_ID}',
        cancel_url: 'https://shop.example/cart',
        livemode: false,
        url: `${mock.url}/c/pay/${session.id}`,
      });
      expect(session.created).toBeGreaterThanOrEqual(now);
      // Stripe's default lifetime is 24 hours.
      expect(session.expires_at - session.created).toBe(24 * 60 * 60);
      expect(mock.events().length).toBe(before);
    });

    it('retrieves, with expand[]=payment_intent once the customer has paid', async () => {
      const session = await newSession({ payment_intent_data: { metadata: { order_id: 'order-7' }, capture_method: 'manual' } });
      expect((await stripe.checkout.sessions.retrieve(session.id)).payment_intent).toBeNull();
      await submit(session.id, '', { card_number: '4242 4242 4242 4242' });
      const paid = await stripe.checkout.sessions.retrieve(session.id, { expand: ['payment_intent'] });
      const pi = paid.payment_intent as Stripe.PaymentIntent;
      expect(pi).toMatchObject({ object: 'payment_intent', amount: 3098, currency: 'usd', capture_method: 'manual', status: 'requires_capture', metadata: { order_id: 'order-7' } });
      expect(paid).toMatchObject({ status: 'complete', payment_status: 'paid', url: null });
    });

    it('lists newest first, filtered by payment_intent, paged with limit and starting_after', async () => {
      const a = await newSession();
      const b = await newSession();
      const c = await newSession();
      const page = await stripe.checkout.sessions.list({ limit: 2 });
      expect(page.data.map((s) => s.id)).toEqual([c.id, b.id]);
      expect(page.has_more).toBe(true);
      const next = await stripe.checkout.sessions.list({ limit: 1, starting_after: b.id });
      expect(next.data.map((s) => s.id)).toEqual([a.id]);

      await submit(b.id, '', { card_number: '4242424242424242' });
      const piId = (await stripe.checkout.sessions.retrieve(b.id)).payment_intent as string;
      const byIntent = await stripe.checkout.sessions.list({ payment_intent: piId });
      expect(byIntent.data.map((s) => s.id)).toEqual([b.id]);
    });

    it('lists line items in the order given, with their prices, paged', async () => {
      const session = await newSession();
      const items = await stripe.checkout.sessions.listLineItems(session.id);
      expect(items.data).toHaveLength(2);
      expect(items.data[0]).toMatchObject({ object: 'item', description: 'Blue mug', quantity: 2, amount_total: 2598, currency: 'usd', price: { object: 'price', unit_amount: 1299, currency: 'usd', type: 'one_time' } });
      expect(items.data[1]).toMatchObject({ description: 'Gift wrap', quantity: 1, amount_total: 500 });
      const second = await stripe.checkout.sessions.listLineItems(session.id, { limit: 1, starting_after: items.data[0].id });
      expect(second.data.map((i) => i.id)).toEqual([items.data[1].id]);
    });

    it('takes line items priced by a Price created through the API', async () => {
      const product = await stripe.products.create({ name: 'Poster' });
      const price = await stripe.prices.create({ product: product.id, unit_amount: 1500, currency: 'eur' });
      const session = await stripe.checkout.sessions.create({ mode: 'payment', line_items: [{ price: price.id, quantity: 2 }], success_url: 'https://shop.example/ok' });
      expect(session).toMatchObject({ amount_total: 3000, currency: 'eur' });
      expect((await stripe.checkout.sessions.listLineItems(session.id)).data[0]).toMatchObject({ description: 'Poster', price: { id: price.id } });
    });

    it('expires an open session at once (checkout.session.expired), and refuses to expire it again', async () => {
      const session = await newSession();
      const expired = await stripe.checkout.sessions.expire(session.id);
      expect(expired).toMatchObject({ id: session.id, status: 'expired', payment_status: 'unpaid', url: null });
      expect(typesFor(session)).toEqual(['checkout.session.expired']);
      await expect(stripe.checkout.sessions.expire(session.id)).rejects.toMatchObject({ type: 'StripeInvalidRequestError', statusCode: 400, message: expect.stringContaining('open') });
      // A complete session cannot be expired either.
      const paid = await newSession();
      await submit(paid.id, '', { card_number: '4242424242424242' });
      await expect(stripe.checkout.sessions.expire(paid.id)).rejects.toMatchObject({ statusCode: 400 });
    });

    it('cancels the PaymentIntent a declined attempt left behind when the session expires', async () => {
      const session = await newSession();
      await submit(session.id, '', { card_number: '4000 0000 0000 0002' });
      const piId = (await stripe.checkout.sessions.retrieve(session.id)).payment_intent as string;
      await stripe.checkout.sessions.expire(session.id);
      expect(await stripe.paymentIntents.retrieve(piId)).toMatchObject({ status: 'canceled', cancellation_reason: 'abandoned' });
      expect(typesFor(session, piId).slice(-2)).toEqual(['payment_intent.canceled', 'checkout.session.expired']);
    });

    it('expires an open session by itself at expires_at, the wait scaled by the time scale', async () => {
      const expiresAt = Math.floor(Date.now() / 1000) + 30 * 60 + 2;
      const session = await newSession({ expires_at: expiresAt });
      expect(session.expires_at).toBe(expiresAt);
      const start = Date.now();
      await waitFor(async () => (await stripe.checkout.sessions.retrieve(session.id)).status === 'expired', 'the session to expire', 10_000);
      // 30 minutes at 0.001 is 1.8 s.
      expect(Date.now() - start).toBeGreaterThan(1_000);
      expect(typesFor(session)).toEqual(['checkout.session.expired']);
      // A paid session's expiry is called off.
      const paid = await newSession({ expires_at: expiresAt });
      await submit(paid.id, '', { card_number: '4242424242424242' });
      await new Promise((r) => setTimeout(r, 2_200));
      expect((await stripe.checkout.sessions.retrieve(paid.id)).status).toBe('complete');
    });

    it('replays a create with the same Idempotency-Key and refuses the key with other parameters', async () => {
      const key = `checkout-${Date.now()}`;
      const first = await stripe.checkout.sessions.create({ mode: 'payment', line_items: [{ price_data: { currency: 'usd', unit_amount: 700, product_data: { name: 'Tea' } }, quantity: 1 }] }, { idempotencyKey: key });
      const again = await stripe.checkout.sessions.create({ mode: 'payment', line_items: [{ price_data: { currency: 'usd', unit_amount: 700, product_data: { name: 'Tea' } }, quantity: 1 }] }, { idempotencyKey: key });
      expect(again.id).toBe(first.id);
      expect(again.lastResponse.headers['idempotent-replayed']).toBe('true');
      await expect(
        stripe.checkout.sessions.create({ mode: 'payment', line_items: [{ price_data: { currency: 'usd', unit_amount: 800, product_data: { name: 'Tea' } }, quantity: 1 }] }, { idempotencyKey: key }),
      ).rejects.toMatchObject({ type: 'StripeIdempotencyError', statusCode: 400 });
      // An expire replayed under its key answers as the first time, without a second event.
      const session = await newSession();
      await stripe.checkout.sessions.expire(session.id, {}, { idempotencyKey: `${key}-expire` });
      const replay = await stripe.checkout.sessions.expire(session.id, {}, { idempotencyKey: `${key}-expire` });
      expect(replay.status).toBe('expired');
      expect(typesFor(session)).toEqual(['checkout.session.expired']);
    });
  });

  describe('input errors in Stripe\'s shape', () => {
    const line = { price_data: { currency: 'usd', unit_amount: 1000, product_data: { name: 'Thing' } }, quantity: 1 };
    const cases: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
      ['mode missing', { line_items: [line] }, { param: 'mode', code: 'parameter_missing' }],
      ['line_items missing', { mode: 'payment' }, { param: 'line_items', code: 'parameter_missing' }],
      ['an unknown currency', { mode: 'payment', line_items: [{ ...line, price_data: { ...line.price_data, currency: 'xyz' } }] }, { param: 'currency' }],
      ['quantity 0', { mode: 'payment', line_items: [{ ...line, quantity: 0 }] }, { param: 'line_items[0][quantity]' }],
      ['no product for price_data', { mode: 'payment', line_items: [{ price_data: { currency: 'usd', unit_amount: 1000 }, quantity: 1 }] }, { param: 'line_items[0][price_data][product_data]' }],
      ['a total below Stripe\'s minimum', { mode: 'payment', line_items: [{ ...line, price_data: { ...line.price_data, unit_amount: 20 } }] }, { param: 'line_items', code: 'amount_too_small' }],
      ['mixed currencies', { mode: 'payment', line_items: [line, { ...line, price_data: { ...line.price_data, currency: 'eur' } }] }, { param: 'line_items' }],
      ['a success_url that is not a URL', { mode: 'payment', line_items: [line], success_url: 'thanks' }, { param: 'success_url' }],
      ['capture_method later', { mode: 'payment', line_items: [line], payment_intent_data: { capture_method: 'later' } }, { param: 'payment_intent_data[capture_method]' }],
      ['an unknown parameter', { mode: 'payment', line_items: [line], colour: 'red' }, { param: 'colour', code: 'parameter_unknown' }],
      ['an unknown price', { mode: 'payment', line_items: [{ price: 'price_nope', quantity: 1 }] }, { param: 'line_items[0][price]', code: 'resource_missing' }],
      ['subscription mode', { mode: 'subscription', line_items: [line] }, { param: 'mode' }],
    ];
    it.each(cases)('refuses %s with 400 naming the param', async (_what, body, error) => {
      const err = await stripe.checkout.sessions.create(body as unknown as Stripe.Checkout.SessionCreateParams).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
      expect(err).toMatchObject({ statusCode: (error.code === 'resource_missing' ? 404 : 400), ...error });
    });

    it('refuses expires_at under 30 minutes or over 24 hours from now, naming expires_at', async () => {
      const now = Math.floor(Date.now() / 1000);
      for (const expiresAt of [now + 60, now + 29 * 60, now + 25 * 60 * 60]) {
        await expect(newSession({ expires_at: expiresAt })).rejects.toMatchObject({ statusCode: 400, param: 'expires_at', type: 'StripeInvalidRequestError' });
      }
      await expect(newSession({ expires_at: now + 31 * 60 })).resolves.toMatchObject({ status: 'open' });
    });

    it('answers 404 resource_missing for an unknown session', async () => {
      await expect(stripe.checkout.sessions.retrieve('cs_test_nope')).rejects.toMatchObject({ statusCode: 404, code: 'resource_missing' });
      await expect(stripe.checkout.sessions.expire('cs_test_nope')).rejects.toMatchObject({ statusCode: 404 });
      await expect(stripe.checkout.sessions.listLineItems('cs_test_nope')).rejects.toMatchObject({ statusCode: 404 });
    });
  });

  describe('events of each payment path, in Stripe\'s order', () => {
    it('a card that succeeds: created, charge.succeeded, succeeded, then checkout.session.completed (paid); the customer returns to success_url', async () => {
      const session = await newSession();
      const location = await submit(session.id, '', { card_number: '4242 4242 4242 4242' });
      expect(location).toBe(`https://shop.example/thanks?session=${session.id}`);
      const done = await stripe.checkout.sessions.retrieve(session.id);
      const pi = await stripe.paymentIntents.retrieve(done.payment_intent as string);
      expect(pi).toMatchObject({ status: 'succeeded', amount: 3098, amount_received: 3098, metadata: { order_id: 'order-42' } });
      expect(typesFor(session, pi.id)).toEqual(['payment_intent.created', 'charge.succeeded', 'payment_intent.succeeded', 'checkout.session.completed']);
      const completed = mock.events().find((e) => e.type === 'checkout.session.completed' && (e.data.object as { id: string }).id === session.id)!;
      expect(completed.data.object).toMatchObject({ status: 'complete', payment_status: 'paid', payment_intent: pi.id, client_reference_id: 'order-42' });
      // It reached the forwarding endpoint too, signed.
      await waitFor(async () => receiver.received.some((e) => e.id === completed.id), 'the forwarded checkout.session.completed');
    });

    it('manual capture: the authorization gives amount_capturable_updated, the session is complete, the capture succeeds later', async () => {
      const session = await newSession({ payment_intent_data: { capture_method: 'manual', metadata: { order_id: 'order-9' } } });
      await submit(session.id, '', { card_number: '4242424242424242' });
      const piId = (await stripe.checkout.sessions.retrieve(session.id)).payment_intent as string;
      expect(typesFor(session, piId)).toEqual(['payment_intent.created', 'charge.succeeded', 'payment_intent.amount_capturable_updated', 'checkout.session.completed']);
      expect(await stripe.paymentIntents.retrieve(piId)).toMatchObject({ status: 'requires_capture', amount_capturable: 3098, metadata: { order_id: 'order-9' } });
      expect(await stripe.paymentIntents.capture(piId)).toMatchObject({ status: 'succeeded', amount_received: 3098 });
    });

    it('a declined card, then a good one: charge.failed and payment_failed, the session stays open, one PaymentIntent throughout', async () => {
      const session = await newSession();
      const back = await submit(session.id, '', { card_number: '4000 0000 0000 0002' });
      expect(back).toBe(`/c/pay/${session.id}?error=card_declined`);
      const open = await stripe.checkout.sessions.retrieve(session.id);
      expect(open).toMatchObject({ status: 'open', payment_status: 'unpaid' });
      const piId = open.payment_intent as string;
      expect(await stripe.paymentIntents.retrieve(piId)).toMatchObject({ status: 'requires_payment_method', last_payment_error: { code: 'card_declined' } });
      expect(typesFor(session, piId)).toEqual(['payment_intent.created', 'charge.failed', 'payment_intent.payment_failed']);
      await submit(session.id, '', { card_number: '4242424242424242' });
      expect(typesFor(session, piId).slice(3)).toEqual(['charge.succeeded', 'payment_intent.succeeded', 'checkout.session.completed']);
      expect((await stripe.checkout.sessions.retrieve(session.id)).payment_intent).toBe(piId);
    });

    it('an unknown card number changes nothing and says why', async () => {
      const session = await newSession();
      expect(await submit(session.id, '', { card_number: '1234 5678 9012 3456' })).toBe(`/c/pay/${session.id}?error=incorrect_number`);
      expect(await stripe.checkout.sessions.retrieve(session.id)).toMatchObject({ status: 'open', payment_intent: null });
      expect(typesFor(session)).toEqual([]);
    });

    it('3-D Secure: requires_action, a failed authentication keeps the session open, a completed one pays', async () => {
      const session = await newSession();
      expect(await submit(session.id, '', { card_number: '4000 0027 6000 3184' })).toBe(`/c/pay/${session.id}/authenticate`);
      const piId = (await stripe.checkout.sessions.retrieve(session.id)).payment_intent as string;
      expect(await stripe.paymentIntents.retrieve(piId)).toMatchObject({ status: 'requires_action' });
      expect(await submit(session.id, 'authenticate', { outcome: 'fail' })).toBe(`/c/pay/${session.id}?error=payment_intent_authentication_failure`);
      expect(await stripe.checkout.sessions.retrieve(session.id)).toMatchObject({ status: 'open' });
      expect(typesFor(session, piId)).toEqual(['payment_intent.created', 'payment_intent.requires_action', 'payment_intent.payment_failed']);

      await submit(session.id, '', { card_number: '4000 0027 6000 3184' });
      expect(await submit(session.id, 'authenticate', { outcome: 'complete' })).toBe(`https://shop.example/thanks?session=${session.id}`);
      expect(typesFor(session, piId).slice(3)).toEqual(['payment_intent.requires_action', 'charge.succeeded', 'payment_intent.succeeded', 'checkout.session.completed']);
    });

    it('bank redirect authorized: complete but unpaid at once, then succeeded and checkout.session.async_payment_succeeded', async () => {
      const session = await newSession();
      expect(await submit(session.id, 'bank', { outcome: 'authorize' })).toBe(`https://shop.example/thanks?session=${session.id}`);
      const piId = (await stripe.checkout.sessions.retrieve(session.id)).payment_intent as string;
      const completed = mock.events().find((e) => e.type === 'checkout.session.completed' && (e.data.object as { id: string }).id === session.id)!;
      expect(completed.data.object).toMatchObject({ status: 'complete', payment_status: 'unpaid' });
      await mock.idle();
      expect(typesFor(session, piId)).toEqual([
        'payment_intent.created', 'charge.pending', 'payment_intent.processing', 'checkout.session.completed',
        'charge.succeeded', 'payment_intent.succeeded', 'checkout.session.async_payment_succeeded',
      ]);
      expect(await stripe.checkout.sessions.retrieve(session.id)).toMatchObject({ status: 'complete', payment_status: 'paid' });
      expect(await stripe.paymentIntents.retrieve(piId)).toMatchObject({ status: 'succeeded', payment_method_types: ['card', 'ideal'] });
    });

    it('bank redirect failed: complete and unpaid, then payment_failed and checkout.session.async_payment_failed', async () => {
      const session = await newSession();
      await submit(session.id, 'bank', { outcome: 'fail' });
      const piId = (await stripe.checkout.sessions.retrieve(session.id)).payment_intent as string;
      await mock.idle();
      expect(typesFor(session, piId)).toEqual([
        'payment_intent.created', 'charge.pending', 'payment_intent.processing', 'checkout.session.completed',
        'charge.failed', 'payment_intent.payment_failed', 'checkout.session.async_payment_failed',
      ]);
      expect(await stripe.checkout.sessions.retrieve(session.id)).toMatchObject({ status: 'complete', payment_status: 'unpaid' });
    });

    it('a payment on a session that is no longer open is refused by the page', async () => {
      const session = await newSession();
      await stripe.checkout.sessions.expire(session.id);
      expect(await submit(session.id, '', { card_number: '4242424242424242' })).toBe(`/c/pay/${session.id}`);
      expect((await stripe.checkout.sessions.retrieve(session.id)).payment_intent).toBeNull();
      const page = await fetch(`${mock.url}/c/pay/${session.id}`);
      expect(await page.text()).toContain('expired');
    });

    it('drop and duplicate faults apply to checkout events like any other', async () => {
      mock.setFaults({ duplicateRate: 1 }, 7);
      try {
        const session = await newSession();
        await submit(session.id, '', { card_number: '4242424242424242' });
        const completed = mock.events().find((e) => e.type === 'checkout.session.completed' && (e.data.object as { id: string }).id === session.id)!;
        await waitFor(async () => receiver.received.filter((e) => e.id === completed.id).length >= 2, 'the duplicated delivery');
      } finally {
        mock.setFaults({});
      }
    });
  });
});

describe('Checkout Sessions and retention', () => {
  it('forgets finished sessions (and the prices their price_data made) with the events, 30 scaled days on', async () => {
    // 30 days become about 2.6 s; 24 hours (the default session lifetime) about 86 ms.
    const mock = await MockPsp.start({ port: 0, timeScale: 1e-6 });
    try {
      const stripe = mockSdk(mock);
      const line = { price_data: { currency: 'usd', unit_amount: 1000, product_data: { name: 'Thing' } }, quantity: 1 };
      const paid = await stripe.checkout.sessions.create({ mode: 'payment', line_items: [line] });
      await fetch(`${mock.url}/c/pay/${paid.id}`, { method: 'POST', body: new URLSearchParams({ card_number: '4242424242424242' }), redirect: 'manual' });
      const lapsed = await stripe.checkout.sessions.create({ mode: 'payment', line_items: [line] });
      await waitFor(async () => (await stripe.checkout.sessions.retrieve(lapsed.id)).status === 'expired', 'the default lifetime to end', 5_000);
      expect(mock.sizes().checkoutSessions).toBe(2);
      await waitFor(async () => mock.sizes().checkoutSessions === 0, 'the finished sessions to be swept', 15_000);
      await expect(stripe.checkout.sessions.retrieve(paid.id)).rejects.toMatchObject({ statusCode: 404 });
      expect(mock.sizes().checkoutExpiries).toBe(0);
    } finally {
      await mock.stop();
    }
  });
});
