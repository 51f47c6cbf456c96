import http from 'node:http';
import { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { MockPsp } from '../../src/mock-psp';
import { waitFor } from '../support/wait';

const SECRET = 'whsec_mock_suite_secret';

/** A webhook endpoint that verifies every delivery exactly as a backend would, and can be told to fail. */
class Receiver {
  readonly received: Stripe.Event[] = [];
  readonly rejected: string[] = [];
  /** Status to answer with for the next N deliveries (then 200). */
  failNext = 0;
  private server!: http.Server;

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (this.failNext > 0) {
          this.failNext -= 1;
          res.writeHead(500).end();
          return;
        }
        try {
          this.received.push(Stripe.webhooks.constructEvent(Buffer.concat(chunks), req.headers['stripe-signature'] as string, SECRET));
          res.writeHead(200).end();
        } catch (err) {
          this.rejected.push((err as Error).message);
          res.writeHead(400).end();
        }
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/webhooks`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

function sdk(mock: MockPsp, key = 'sk_test_suite', maxNetworkRetries = 0): Stripe {
  return new Stripe(key, { host: '127.0.0.1', port: mock.port, protocol: 'http', telemetry: false, maxNetworkRetries });
}

function typesFor(mock: MockPsp, objectId: string): string[] {
  return mock
    .events()
    .filter((e) => {
      const o = e.data.object as { id?: string; payment_intent?: string; charge?: string };
      return o.id === objectId || o.payment_intent === objectId;
    })
    .map((e) => e.type);
}

describe('Mock PSP through the official stripe SDK', () => {
  let mock: MockPsp;
  let stripe: Stripe;

  beforeAll(async () => {
    mock = await MockPsp.start({ port: 0, webhookSecret: SECRET, timeScale: 0.01 });
    stripe = sdk(mock);
  });
  afterAll(() => mock.stop());

  const newIntent = (extra: Partial<Stripe.PaymentIntentCreateParams> = {}) =>
    stripe.paymentIntents.create({ amount: 2000, currency: 'usd', metadata: { order_id: 'order-1' }, ...extra });

  describe('authentication', () => {
    it('rejects a request without a key, and a live or malformed key, with 401 in Stripe shape', async () => {
      const noKey = await fetch(`${mock.url}/v1/payment_intents`);
      expect(noKey.status).toBe(401);
      expect(((await noKey.json()) as { error: unknown }).error).toMatchObject({ type: 'invalid_request_error', message: expect.stringContaining('did not provide an API key') });
      await expect(sdk(mock, 'sk_live_abcdefghijklmnop').paymentIntents.list()).rejects.toMatchObject({ type: 'StripeAuthenticationError', statusCode: 401 });
    });

    it('accepts a Stripe-Version header and answers with a request id', async () => {
      const res = await fetch(`${mock.url}/v1/payment_intents`, { headers: { Authorization: 'Bearer sk_test_x', 'Stripe-Version': '2024-06-20' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('request-id')).toMatch(/^req_/);
    });
  });

  describe('PaymentIntents', () => {
    it('creates with Stripe ids and a pi_…_secret_… client secret; retrieves, updates and lists', async () => {
      const pi = await newIntent({ automatic_payment_methods: { enabled: true, allow_redirects: 'never' }, receipt_email: 'a@example.com' });
      expect(pi).toMatchObject({ object: 'payment_intent', status: 'requires_payment_method', amount: 2000, currency: 'usd', amount_received: 0, livemode: false });
      expect(pi.id).toMatch(/^pi_\w{24}$/);
      expect(pi.client_secret).toMatch(new RegExp(`^${pi.id}_secret_\\w+$`));
      expect(pi.metadata).toEqual({ order_id: 'order-1' });
      expect((await stripe.paymentIntents.retrieve(pi.id)).id).toBe(pi.id);
      const updated = await stripe.paymentIntents.update(pi.id, { amount: 2500, metadata: { note: 'x' } });
      expect(updated).toMatchObject({ amount: 2500, metadata: { order_id: 'order-1', note: 'x' } });
      const list = await stripe.paymentIntents.list({ limit: 100 });
      expect(list.data.map((p) => p.id)).toContain(pi.id);
    });

    it('answers 404 resource_missing for an unknown id and 400 with the param for malformed or unknown parameters', async () => {
      await expect(stripe.paymentIntents.retrieve('pi_doesnotexist')).rejects.toMatchObject({ statusCode: 404, code: 'resource_missing' });
      await expect(stripe.paymentIntents.create({ amount: 'ten' as unknown as number, currency: 'usd' })).rejects.toMatchObject({ statusCode: 400, param: 'amount' });
      await expect(stripe.paymentIntents.create({ amount: 100 } as Stripe.PaymentIntentCreateParams)).rejects.toMatchObject({ statusCode: 400, param: 'currency', code: 'parameter_missing' });
      await expect(stripe.paymentIntents.create({ amount: 100, currency: 'usd', colour: 'red' } as Stripe.PaymentIntentCreateParams)).rejects.toMatchObject({ param: 'colour', code: 'parameter_unknown' });
      await expect(stripe.paymentIntents.create({ amount: 100, currency: 'usd', capture_method: 'later' as 'manual' })).rejects.toMatchObject({ param: 'capture_method' });
    });

    it('accepts the payment_method_types[] form the Stripe CLI still sends', async () => {
      const res = await fetch(`${mock.url}/v1/payment_intents`, {
        method: 'POST',
        headers: { Authorization: 'Bearer sk_test_x', 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'amount=2000&currency=usd&payment_method_types[]=card&payment_method=pm_card_visa&confirm=true',
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'succeeded', payment_method_types: ['card'] });
    });

    it('succeeds with pm_card_visa and pm_card_mastercard, emitting created, charge.succeeded, succeeded in that order', async () => {
      for (const pm of ['pm_card_visa', 'pm_card_mastercard']) {
        const pi = await newIntent();
        const confirmed = await stripe.paymentIntents.confirm(pi.id, { payment_method: pm });
        expect(confirmed).toMatchObject({ status: 'succeeded', amount_received: 2000 });
        const charge = await stripe.charges.retrieve(confirmed.latest_charge as string);
        expect(charge).toMatchObject({ object: 'charge', status: 'succeeded', paid: true, captured: true, amount: 2000, payment_intent: pi.id });
        expect(typesFor(mock, pi.id)).toEqual(['payment_intent.created', 'charge.succeeded', 'payment_intent.succeeded']);
      }
    });

    it('declines pm_card_chargeDeclined and …InsufficientFunds with 402 card_declined and puts the intent back to requires_payment_method', async () => {
      for (const [pm, declineCode] of [
        ['pm_card_chargeDeclined', 'generic_decline'],
        ['pm_card_chargeDeclinedInsufficientFunds', 'insufficient_funds'],
      ]) {
        const pi = await newIntent();
        const err = await stripe.paymentIntents.confirm(pi.id, { payment_method: pm }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(Stripe.errors.StripeCardError);
        expect(err).toMatchObject({ statusCode: 402, code: 'card_declined', decline_code: declineCode });
        const after = await stripe.paymentIntents.retrieve(pi.id);
        expect(after.status).toBe('requires_payment_method');
        expect(after.last_payment_error).toMatchObject({ code: 'card_declined', decline_code: declineCode, type: 'card_error' });
        expect(typesFor(mock, pi.id)).toEqual(['payment_intent.created', 'charge.failed', 'payment_intent.payment_failed']);
        // A later attempt with a good card still succeeds.
        expect((await stripe.paymentIntents.confirm(pi.id, { payment_method: 'pm_card_visa' })).status).toBe('succeeded');
      }
    });

    it('needs 3-D Secure with pm_card_authenticationRequired; the test helper completes or fails it', async () => {
      const passes = await newIntent();
      const action = await stripe.paymentIntents.confirm(passes.id, { payment_method: 'pm_card_authenticationRequired' });
      expect(action.status).toBe('requires_action');
      expect(action.next_action?.type).toBe('use_stripe_sdk');
      const done = await stripe.rawRequest('POST', `/v1/test_helpers/payment_intents/${passes.id}/authenticate`, { outcome: 'succeed' });
      expect(JSON.parse(JSON.stringify(done))).toMatchObject({ status: 'succeeded' });
      expect(typesFor(mock, passes.id)).toEqual(['payment_intent.created', 'payment_intent.requires_action', 'charge.succeeded', 'payment_intent.succeeded']);

      const fails = await newIntent({ payment_method: 'pm_card_authenticationRequired', confirm: true });
      expect(fails.status).toBe('requires_action');
      mock.completeAuthentication(fails.id, 'fail');
      const failed = await stripe.paymentIntents.retrieve(fails.id);
      expect(failed.status).toBe('requires_payment_method');
      expect(failed.last_payment_error?.code).toBe('payment_intent_authentication_failure');
      expect(typesFor(mock, fails.id)).toEqual(['payment_intent.created', 'payment_intent.requires_action', 'payment_intent.payment_failed']);
    });

    it('authorizes with capture_method=manual (requires_capture), then captures', async () => {
      const pi = await newIntent({ capture_method: 'manual', payment_method: 'pm_card_visa', confirm: true });
      expect(pi).toMatchObject({ status: 'requires_capture', amount_capturable: 2000, amount_received: 0 });
      const captured = await stripe.paymentIntents.capture(pi.id);
      expect(captured).toMatchObject({ status: 'succeeded', amount_received: 2000, amount_capturable: 0 });
      expect(typesFor(mock, pi.id)).toEqual(['payment_intent.created', 'charge.succeeded', 'payment_intent.amount_capturable_updated', 'charge.captured', 'payment_intent.succeeded']);
      await expect(stripe.paymentIntents.capture(pi.id)).rejects.toMatchObject({ code: 'payment_intent_unexpected_state' });
    });

    it('cancels an unpaid intent and refuses to cancel a succeeded one', async () => {
      const pi = await newIntent();
      const canceled = await stripe.paymentIntents.cancel(pi.id, { cancellation_reason: 'requested_by_customer' });
      expect(canceled).toMatchObject({ status: 'canceled', cancellation_reason: 'requested_by_customer' });
      expect(canceled.canceled_at).toEqual(expect.any(Number));
      expect(typesFor(mock, pi.id)).toEqual(['payment_intent.created', 'payment_intent.canceled']);
      const paid = await newIntent({ payment_method: 'pm_card_visa', confirm: true });
      await expect(stripe.paymentIntents.cancel(paid.id)).rejects.toMatchObject({ statusCode: 400, code: 'payment_intent_unexpected_state' });
    });

    it('SEPA Direct Debit is processing first and succeeds later, as a bank debit does', async () => {
      const pm = await stripe.paymentMethods.create({ type: 'sepa_debit', sepa_debit: { iban: 'DE89370400440532013000' }, billing_details: { name: 'Ada', email: 'ada@example.com' } });
      expect(pm).toMatchObject({ type: 'sepa_debit', sepa_debit: { last4: '3000' } });
      const pi = await newIntent({ currency: 'eur', payment_method_types: ['sepa_debit'], payment_method: pm.id, confirm: true } as Partial<Stripe.PaymentIntentCreateParams>);
      expect(pi.status).toBe('processing');
      await mock.idle();
      expect((await stripe.paymentIntents.retrieve(pi.id)).status).toBe('succeeded');
      expect(typesFor(mock, pi.id)).toEqual(['payment_intent.created', 'charge.pending', 'payment_intent.processing', 'charge.succeeded', 'payment_intent.succeeded']);
    });

    it('creates card PaymentMethods by test number and rejects other numbers', async () => {
      const pm = await stripe.paymentMethods.create({ type: 'card', card: { number: '4242424242424242', exp_month: 12, exp_year: 2030, cvc: '123' } });
      expect(pm).toMatchObject({ object: 'payment_method', type: 'card', card: { brand: 'visa', last4: '4242' } });
      expect(pm.id).toMatch(/^pm_/);
      expect((await stripe.paymentMethods.retrieve(pm.id)).id).toBe(pm.id);
      await expect(stripe.paymentMethods.create({ type: 'card', card: { number: '1234123412341234', exp_month: 1, exp_year: 2030 } })).rejects.toMatchObject({ code: 'incorrect_number' });
    });
  });

  describe('disputes', () => {
    it.each([
      ['pm_card_createDispute', 'needs_response'],
      ['pm_card_createDisputeInquiry', 'warning_needs_response'],
    ])('%s succeeds and then opens a dispute (%s)', async (pm, status) => {
      const pi = await newIntent({ payment_method: pm, confirm: true });
      expect(pi.status).toBe('succeeded');
      await mock.idle();
      const event = mock.events().find((e) => e.type === 'charge.dispute.created' && (e.data.object as Stripe.Dispute).payment_intent === pi.id);
      expect(event).toBeDefined();
      const dispute = await stripe.disputes.retrieve((event?.data.object as Stripe.Dispute).id);
      expect(dispute).toMatchObject({ object: 'dispute', status, amount: 2000, charge: pi.latest_charge });
      expect((await stripe.charges.retrieve(pi.latest_charge as string)).disputed).toBe(true);
      await expect(stripe.refunds.create({ payment_intent: pi.id })).rejects.toMatchObject({ code: 'charge_disputed' });
    });
  });

  describe('refunds', () => {
    it('refunds partially by payment_intent, then the rest by charge; more than remains is refused', async () => {
      const pi = await newIntent({ payment_method: 'pm_card_visa', confirm: true });
      const partial = await stripe.refunds.create({ payment_intent: pi.id, amount: 500 });
      expect(partial).toMatchObject({ object: 'refund', amount: 500, status: 'succeeded', payment_intent: pi.id, charge: pi.latest_charge });
      expect(partial.id).toMatch(/^re_/);
      await expect(stripe.refunds.create({ payment_intent: pi.id, amount: 1501 })).rejects.toMatchObject({ statusCode: 400, code: 'amount_too_large', param: 'amount' });
      const rest = await stripe.refunds.create({ charge: pi.latest_charge as string });
      expect(rest.amount).toBe(1500);
      const charge = await stripe.charges.retrieve(pi.latest_charge as string);
      expect(charge).toMatchObject({ amount_refunded: 2000, refunded: true });
      await expect(stripe.refunds.create({ payment_intent: pi.id, amount: 1 })).rejects.toMatchObject({ code: 'charge_already_refunded' });
      expect((await stripe.refunds.retrieve(partial.id)).amount).toBe(500);
      expect((await stripe.refunds.list({ payment_intent: pi.id })).data.map((r) => r.id)).toEqual([rest.id, partial.id]);
      expect(typesFor(mock, pi.id).slice(3)).toEqual(['charge.refunded', 'refund.created', 'charge.refunded', 'refund.created']);
    });

    it('refuses to refund an unpaid intent', async () => {
      const pi = await newIntent();
      await expect(stripe.refunds.create({ payment_intent: pi.id })).rejects.toMatchObject({ statusCode: 400, code: 'charge_not_refundable' });
    });
  });

  describe('customers, payment method attachment, legacy charges, lists', () => {
    it('creates and retrieves a customer, attaches a PaymentMethod to it, and pays with it', async () => {
      const customer = await stripe.customers.create({ email: 'ada@example.com', name: 'Ada', metadata: { tier: 'gold' } });
      expect(customer).toMatchObject({ object: 'customer', email: 'ada@example.com', metadata: { tier: 'gold' } });
      expect(customer.id).toMatch(/^cus_/);
      expect((await stripe.customers.retrieve(customer.id)).id).toBe(customer.id);
      const pm = await stripe.paymentMethods.create({ type: 'card', card: { token: 'tok_visa' } });
      const attached = await stripe.paymentMethods.attach(pm.id, { customer: customer.id });
      expect(attached.customer).toBe(customer.id);
      const pi = await newIntent({ customer: customer.id, payment_method: pm.id, confirm: true });
      expect(pi).toMatchObject({ status: 'succeeded', customer: customer.id });
      expect((await stripe.paymentIntents.list({ customer: customer.id })).data.map((p) => p.id)).toEqual([pi.id]);
      expect((await stripe.charges.list({ customer: customer.id })).data.map((c) => c.payment_intent)).toEqual([pi.id]);
      await expect(stripe.customers.retrieve('cus_missing')).rejects.toMatchObject({ statusCode: 404, code: 'resource_missing' });
    });

    it('charges a token with the legacy Charges API, uncaptured, then captures it; lists charges and disputes', async () => {
      const charge = await stripe.charges.create({ amount: 1500, currency: 'usd', source: 'tok_visa', capture: false });
      expect(charge).toMatchObject({ object: 'charge', captured: false, status: 'succeeded', amount: 1500 });
      const captured = await stripe.charges.capture(charge.id);
      expect(captured).toMatchObject({ captured: true, amount_captured: 1500 });
      await expect(stripe.charges.capture(charge.id)).rejects.toMatchObject({ code: 'charge_already_captured' });
      expect((await stripe.charges.list({ payment_intent: charge.payment_intent as string })).data.map((c) => c.id)).toEqual([charge.id]);
      const disputed = await newIntent({ payment_method: 'pm_card_createDispute', confirm: true });
      await mock.idle();
      const disputes = await stripe.disputes.list({ payment_intent: disputed.id });
      expect(disputes.data).toHaveLength(1);
      expect(disputes.data[0]).toMatchObject({ payment_intent: disputed.id, status: 'needs_response' });
      expect((await stripe.disputes.list({ charge: disputes.data[0]!.charge as string })).data.map((d) => d.id)).toEqual([disputes.data[0]!.id]);
      expect((await stripe.disputes.list({ charge: charge.id })).data).toEqual([]);
    });

    it('a SEPA refund is pending first and then succeeds, with refund.updated and charge.refund.updated', async () => {
      const pm = await stripe.paymentMethods.create({ type: 'sepa_debit', sepa_debit: { iban: 'DE89370400440532013000' }, billing_details: { name: 'Ada', email: 'ada@example.com' } });
      const pi = await newIntent({ currency: 'eur', payment_method_types: ['sepa_debit'], payment_method: pm.id, confirm: true } as Partial<Stripe.PaymentIntentCreateParams>);
      await mock.idle();
      const refund = await stripe.refunds.create({ payment_intent: pi.id, amount: 700 });
      expect(refund.status).toBe('pending');
      await mock.idle();
      expect((await stripe.refunds.retrieve(refund.id)).status).toBe('succeeded');
      const updates = mock.events().filter((e) => (e.data.object as { id?: string }).id === refund.id).map((e) => e.type);
      expect(updates).toEqual(['refund.created', 'refund.updated', 'charge.refund.updated']);
      const updated = mock.events().find((e) => e.type === 'refund.updated' && (e.data.object as { id?: string }).id === refund.id);
      expect(updated?.data.previous_attributes).toEqual({ status: 'pending' });
    });
  });

  describe('Idempotency-Key', () => {
    it('replays the saved answer for the same key and parameters, and creates nothing more', async () => {
      const params = { amount: 1234, currency: 'usd', metadata: { order_id: 'idem-1' } };
      const first = await stripe.paymentIntents.create(params, { idempotencyKey: 'idem-key-1' });
      const before = mock.events().length;
      const again = await stripe.paymentIntents.create(params, { idempotencyKey: 'idem-key-1' });
      expect(again.id).toBe(first.id);
      expect(mock.events().length).toBe(before);
    });

    it('saves a card decline too, so a retry does not charge again', async () => {
      const pi = await newIntent();
      const first = await stripe.paymentIntents.confirm(pi.id, { payment_method: 'pm_card_chargeDeclined' }, { idempotencyKey: 'idem-decline' }).catch((e: Stripe.errors.StripeError) => e);
      const again = await stripe.paymentIntents.confirm(pi.id, { payment_method: 'pm_card_chargeDeclined' }, { idempotencyKey: 'idem-decline' }).catch((e: Stripe.errors.StripeError) => e);
      expect(first).toMatchObject({ code: 'card_declined' });
      expect(again).toMatchObject({ code: 'card_declined', charge: (first as Stripe.errors.StripeError).charge });
    });

    it('answers 400 idempotency_error when the key is reused with other parameters', async () => {
      await stripe.paymentIntents.create({ amount: 100, currency: 'usd' }, { idempotencyKey: 'idem-key-2' });
      const err = await stripe.paymentIntents.create({ amount: 101, currency: 'usd' }, { idempotencyKey: 'idem-key-2' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
      expect(err).toMatchObject({ statusCode: 400, type: 'StripeIdempotencyError' });
    });

    it('answers 409 idempotency_key_in_use to a concurrent request with the same key', async () => {
      const slow = await MockPsp.start({ port: 0, latencyMs: 300 });
      try {
        const client = sdk(slow);
        const results = await Promise.allSettled([
          client.paymentIntents.create({ amount: 100, currency: 'usd' }, { idempotencyKey: 'same' }),
          new Promise((r) => setTimeout(r, 50)).then(() => client.paymentIntents.create({ amount: 100, currency: 'usd' }, { idempotencyKey: 'same' })),
        ]);
        expect(results[0].status).toBe('fulfilled');
        expect(results[1]).toMatchObject({ status: 'rejected', reason: { statusCode: 409, code: 'idempotency_key_in_use' } });
        // Once the first finished, the same key replays it.
        const replay = await client.paymentIntents.create({ amount: 100, currency: 'usd' }, { idempotencyKey: 'same' });
        expect(replay.id).toBe((results[0] as PromiseFulfilledResult<Stripe.PaymentIntent>).value.id);
        expect(slow.stats().byRoute['POST /v1/payment_intents']).toBe(3);
        expect(slow.events().filter((e) => e.type === 'payment_intent.created')).toHaveLength(1);
      } finally {
        await slow.stop();
      }
    });
  });

  describe('Events API', () => {
    it('lists newest first with limit, starting_after, ending_before, type, types[] and created filters', async () => {
      const own = await MockPsp.start({ port: 0 });
      try {
        const client = sdk(own);
        for (let i = 0; i < 3; i++) await client.paymentIntents.create({ amount: 100 + i, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
        const all = own.events();
        expect(all).toHaveLength(9);
        const newest = [...all].reverse().map((e) => e.id);
        const page1 = await client.events.list({ limit: 4 });
        expect(page1.data.map((e) => e.id)).toEqual(newest.slice(0, 4));
        expect(page1.has_more).toBe(true);
        const page2 = await client.events.list({ limit: 4, starting_after: page1.data[3].id });
        expect(page2.data.map((e) => e.id)).toEqual(newest.slice(4, 8));
        const back = await client.events.list({ limit: 2, ending_before: page2.data[0].id });
        expect(back.data.map((e) => e.id)).toEqual(newest.slice(2, 4));
        expect((await client.events.list({ type: 'payment_intent.succeeded' })).data).toHaveLength(3);
        expect((await client.events.list({ type: 'payment_intent.*' })).data).toHaveLength(6);
        expect((await client.events.list({ types: ['charge.succeeded', 'payment_intent.created'] })).data).toHaveLength(6);
        const created = all[0].created;
        expect((await client.events.list({ created: { gte: created }, limit: 100 })).data).toHaveLength(9);
        expect((await client.events.list({ created: { gt: created + 3600 } })).data).toHaveLength(0);
        expect((await client.events.list({ created: { lt: created } })).data).toHaveLength(0);
        expect((await client.events.list({ created: { lte: created + 3600 }, limit: 100 })).data).toHaveLength(9);
        const auto: string[] = [];
        for await (const e of client.events.list({ limit: 2 })) auto.push(e.id);
        expect(auto).toEqual(newest);
        const one = await client.events.retrieve(all[0].id);
        expect(one).toMatchObject({ id: all[0].id, type: 'payment_intent.created' });
        await expect(client.events.list({ limit: 101 })).rejects.toMatchObject({ param: 'limit' });
      } finally {
        await own.stop();
      }
    });

    it('builds full envelopes: api_version, created, data.object snapshot, livemode, pending_webhooks, request', async () => {
      const pi = await newIntent({ payment_method: 'pm_card_visa' });
      await stripe.paymentIntents.confirm(pi.id, {}, { idempotencyKey: 'confirm-envelope' });
      const [created, , succeeded] = mock.events().filter((e) => (e.data.object as { id: string; payment_intent?: string }).id === pi.id || (e.data.object as { payment_intent?: string }).payment_intent === pi.id);
      expect(succeeded).toMatchObject({ object: 'event', api_version: Stripe.API_VERSION, livemode: false, type: 'payment_intent.succeeded', request: { idempotency_key: 'confirm-envelope' } });
      expect(succeeded.request?.id).toMatch(/^req_/);
      expect(succeeded.id).toMatch(/^evt_/);
      // Snapshots: the created event still shows the intent as it was then.
      expect((created.data.object as Stripe.PaymentIntent).status).toBe('requires_confirmation');
      expect((succeeded.data.object as Stripe.PaymentIntent).status).toBe('succeeded');
    });
  });
});

describe('Mock PSP webhook delivery', () => {
  let receiver: Receiver;
  let target: string;

  beforeEach(async () => {
    receiver = new Receiver();
    target = await receiver.start();
  });
  afterEach(() => receiver.stop());

  async function runFlows(mock: MockPsp, count: number): Promise<void> {
    const client = sdk(mock);
    for (let i = 0; i < count; i++) await client.paymentIntents.create({ amount: 500 + i, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
  }

  it('signs every event as Stripe does, verifiable with stripe.webhooks.constructEvent', async () => {
    const mock = await MockPsp.start({ port: 0, webhookSecret: SECRET, forwardTo: target, timeScale: 0.01 });
    try {
      await runFlows(mock, 2);
      await mock.idle();
      expect(receiver.rejected).toEqual([]);
      expect(receiver.received.map((e) => e.id)).toEqual(mock.events().map((e) => e.id));
      expect(mock.events().every((e) => e.pending_webhooks === 0)).toBe(true);
    } finally {
      await mock.stop();
    }
  });

  it('retries non-2xx answers with backoff until delivered; delivery_success lists what is still failing', async () => {
    const mock = await MockPsp.start({ port: 0, webhookSecret: SECRET, forwardTo: target, timeScale: 0.01 });
    try {
      receiver.failNext = 3;
      await runFlows(mock, 1);
      await mock.idle();
      expect(receiver.received.map((e) => e.type).sort()).toEqual(['charge.succeeded', 'payment_intent.created', 'payment_intent.succeeded']);
      const retried = mock.events().map((e) => mock.deliveryState(e.id)?.attempts ?? 0);
      expect(retried.reduce((a, b) => a + b, 0)).toBe(3 + 3);

      // An endpoint that is down for good: every attempt fails and the events stay undelivered.
      receiver.failNext = 1_000;
      await runFlows(mock, 1);
      await mock.idle();
      const failed = await sdk(mock).events.list({ delivery_success: false, limit: 100 });
      expect(failed.data).toHaveLength(3);
      expect(failed.data.every((e) => mock.deliveryState(e.id)?.attempts === 8)).toBe(true);
      expect((await sdk(mock).events.list({ delivery_success: true, limit: 100 })).data).toHaveLength(3);
    } finally {
      await mock.stop();
    }
  });

  it('drops, duplicates and reorders deliveries, the same way for the same seed', async () => {
    const outcome = async (seed: number) => {
      const local = new Receiver();
      const url = await local.start();
      const mock = await MockPsp.start({ port: 0, webhookSecret: SECRET, forwardTo: url, timeScale: 0.01, seed, faults: { dropRate: 0.2, duplicateRate: 0.2, reorderWindow: 5 } });
      try {
        await runFlows(mock, 20);
        await mock.idle();
        const order = new Map(mock.events().map((e, i) => [e.id, i]));
        return {
          // Positions in emission order: independent of the random ids.
          arrivals: local.received.map((e) => order.get(e.id) as number),
          dropped: mock.events().filter((e) => mock.deliveryState(e.id)?.dropped).map((e) => order.get(e.id)),
        };
      } finally {
        await mock.stop();
        await local.stop();
      }
    };
    const a = await outcome(42);
    const b = await outcome(42);
    expect(a.dropped.length).toBeGreaterThan(3);
    expect(a.dropped).toEqual(b.dropped);
    // 60 events, ~20% dropped, ~20% of the rest twice.
    const unique = new Set(a.arrivals);
    expect(unique.size).toBe(60 - a.dropped.length);
    expect(a.arrivals.length).toBeGreaterThan(unique.size);
    expect(a.arrivals).not.toEqual([...a.arrivals].sort((x, y) => x - y));
    expect(new Set(b.arrivals)).toEqual(unique);
    expect(b.arrivals.length).toBe(a.arrivals.length);
  });

  it('delays deliveries within the configured range and redelivers on request', async () => {
    const mock = await MockPsp.start({ port: 0, webhookSecret: SECRET, forwardTo: target, timeScale: 0.01, faults: { delayMs: [150, 200] } });
    try {
      const started = Date.now();
      await runFlows(mock, 1);
      expect(receiver.received).toHaveLength(0);
      await waitFor(async () => receiver.received.length === 3, 'three deliveries', 5000);
      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
      const first = mock.events()[0];
      mock.redeliver(first.id);
      await waitFor(async () => receiver.received.filter((e) => e.id === first.id).length === 2, 'the redelivery', 5000);
    } finally {
      await mock.stop();
    }
  });
});
