import Stripe from 'stripe';
import { MockPsp } from '../../src/mock-psp';
import { waitFor } from '../support/wait';
import { mockSdk, VerifyingReceiver } from './support';

const FORWARD_SECRET = 'whsec_forward_target_secret';

/** `/v1/webhook_endpoints` through the official SDK, and deliveries to each endpoint signed with its own secret. */
describe('Mock PSP: webhook endpoints', () => {
  let mock: MockPsp;
  let stripe: Stripe;
  const receivers: VerifyingReceiver[] = [];

  beforeAll(async () => {
    mock = await MockPsp.start({ port: 0, timeScale: 0.01, webhookSecret: FORWARD_SECRET });
    stripe = mockSdk(mock);
  });
  afterEach(async () => {
    for (const endpoint of (await stripe.webhookEndpoints.list({ limit: 100 })).data) await stripe.webhookEndpoints.del(endpoint.id);
    mock.setForwardTo(undefined);
    mock.setFaults({});
  });
  afterAll(async () => {
    await mock.stop();
    await Promise.all(receivers.map((r) => r.stop()));
  });

  async function receiver(): Promise<{ receiver: VerifyingReceiver; url: string }> {
    const r = new VerifyingReceiver();
    receivers.push(r);
    return { receiver: r, url: await r.start() };
  }

  /** Registers an endpoint for a receiver, which then verifies with the secret the API returned. */
  async function register(params: Omit<Stripe.WebhookEndpointCreateParams, 'url'>): Promise<{ receiver: VerifyingReceiver; endpoint: Stripe.WebhookEndpoint }> {
    const { receiver: r, url } = await receiver();
    const endpoint = await stripe.webhookEndpoints.create({ url, ...params });
    r.secret = endpoint.secret!;
    return { receiver: r, endpoint };
  }

  const pay = () => stripe.paymentIntents.create({ amount: 1000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
  const eventsOf = (id: string) => mock.events().filter((e) => (e.data.object as { id?: string; payment_intent?: string }).id === id || (e.data.object as { payment_intent?: string }).payment_intent === id);

  describe('API', () => {
    it('creates with a secret shown only at creation; retrieves, lists, updates and deletes', async () => {
      const created = await stripe.webhookEndpoints.create({
        url: 'https://shop.example/webhooks/stripe',
        enabled_events: ['payment_intent.succeeded', 'charge.refunded'],
        api_version: '2024-06-20',
        description: 'Settle',
        metadata: { env: 'test' },
      });
      expect(created).toMatchObject({
        object: 'webhook_endpoint',
        url: 'https://shop.example/webhooks/stripe',
        enabled_events: ['payment_intent.succeeded', 'charge.refunded'],
        api_version: '2024-06-20',
        status: 'enabled',
        description: 'Settle',
        metadata: { env: 'test' },
        livemode: false,
      });
      expect(created.id).toMatch(/^we_\w{24}$/);
      expect(created.secret).toMatch(/^whsec_\w{32}$/);

      const retrieved = await stripe.webhookEndpoints.retrieve(created.id);
      expect(retrieved.secret).toBeUndefined();
      expect(retrieved).toMatchObject({ id: created.id, url: created.url });

      const other = await stripe.webhookEndpoints.create({ url: 'https://other.example/hook', enabled_events: ['*'] });
      expect(other.api_version).toBeNull();
      expect(other.secret).not.toBe(created.secret);
      expect((await stripe.webhookEndpoints.list()).data.map((e) => e.id)).toEqual([other.id, created.id]);

      const updated = await stripe.webhookEndpoints.update(created.id, { url: 'https://shop.example/v2/hook', enabled_events: ['charge.dispute.closed'], disabled: true });
      expect(updated).toMatchObject({ url: 'https://shop.example/v2/hook', enabled_events: ['charge.dispute.closed'], status: 'disabled', api_version: '2024-06-20' });
      expect(updated.secret).toBeUndefined();
      expect((await stripe.webhookEndpoints.update(created.id, { disabled: false })).status).toBe('enabled');

      expect(await stripe.webhookEndpoints.del(created.id)).toMatchObject({ id: created.id, object: 'webhook_endpoint', deleted: true });
      await expect(stripe.webhookEndpoints.retrieve(created.id)).rejects.toMatchObject({ statusCode: 404, code: 'resource_missing' });
      expect((await stripe.webhookEndpoints.list()).data.map((e) => e.id)).toEqual([other.id]);
    });

    it('refuses bad input with 400 naming the parameter; the API version cannot be changed after creation', async () => {
      await expect(stripe.webhookEndpoints.create({ enabled_events: ['*'] } as Stripe.WebhookEndpointCreateParams)).rejects.toMatchObject({ statusCode: 400, param: 'url', code: 'parameter_missing' });
      await expect(stripe.webhookEndpoints.create({ url: 'https://x.example' } as Stripe.WebhookEndpointCreateParams)).rejects.toMatchObject({ statusCode: 400, param: 'enabled_events' });
      await expect(stripe.webhookEndpoints.create({ url: 'not a url', enabled_events: ['*'] })).rejects.toMatchObject({ statusCode: 400, param: 'url' });
      await expect(stripe.webhookEndpoints.create({ url: 'ftp://x.example', enabled_events: ['*'] })).rejects.toMatchObject({ statusCode: 400, param: 'url' });
      await expect(stripe.webhookEndpoints.create({ url: 'https://x.example', enabled_events: ['charge.succeeded', 'Not An Event'] as Stripe.WebhookEndpointCreateParams.EnabledEvent[] })).rejects.toMatchObject({ statusCode: 400, param: 'enabled_events[1]' });
      await expect(stripe.webhookEndpoints.create({ url: 'https://x.example', enabled_events: ['*'], api_version: 'yesterday' as Stripe.WebhookEndpointCreateParams.ApiVersion })).rejects.toMatchObject({ statusCode: 400, param: 'api_version' });
      const endpoint = await stripe.webhookEndpoints.create({ url: 'https://x.example', enabled_events: ['*'] });
      await expect(stripe.webhookEndpoints.update(endpoint.id, { api_version: '2024-06-20' } as Stripe.WebhookEndpointUpdateParams)).rejects.toMatchObject({ statusCode: 400, param: 'api_version', code: 'parameter_unknown' });
      await expect(stripe.webhookEndpoints.del('we_missing')).rejects.toMatchObject({ statusCode: 404 });
    });
  });

  describe('delivery', () => {
    it('each endpoint gets the types it enabled, signed with its own secret; the forwarding URL still gets everything with its secret', async () => {
      const all = await register({ enabled_events: ['*'] });
      const some = await register({ enabled_events: ['payment_intent.succeeded', 'charge.refunded'] });
      const forward = await receiver();
      forward.receiver.secret = FORWARD_SECRET;
      mock.setForwardTo(forward.url);

      const pi = await pay();
      await stripe.refunds.create({ payment_intent: pi.id });
      await mock.idle();
      const emitted = eventsOf(pi.id).map((e) => e.type);
      expect(emitted).toEqual(['payment_intent.created', 'charge.succeeded', 'payment_intent.succeeded', 'charge.refunded', 'refund.created']);

      expect(all.receiver.rejected).toEqual([]);
      expect(some.receiver.rejected).toEqual([]);
      expect(forward.receiver.rejected).toEqual([]);
      expect(all.receiver.types()).toEqual(emitted);
      expect(some.receiver.types()).toEqual(['payment_intent.succeeded', 'charge.refunded']);
      expect(forward.receiver.types()).toEqual(emitted);
      // The same event, the same id, at every target; counted as delivered to all three.
      const succeeded = mock.events().find((e) => e.type === 'payment_intent.succeeded' && (e.data.object as { id: string }).id === pi.id)!;
      expect(some.receiver.received[0]!.id).toBe(succeeded.id);
      expect(succeeded.pending_webhooks).toBe(0);
      expect(mock.deliveryState(succeeded.id, some.endpoint.id)).toMatchObject({ delivered: true, attempts: 1 });
    });

    it('a signature made with one endpoint\'s secret does not verify with another\'s', async () => {
      const first = await register({ enabled_events: ['payment_intent.created'] });
      const second = await register({ enabled_events: ['payment_intent.created'] });
      // The second receiver verifies with the first endpoint's secret: every delivery must fail verification.
      second.receiver.secret = first.endpoint.secret!;
      await pay();
      await mock.idle();
      expect(first.receiver.types()).toEqual(['payment_intent.created']);
      expect(second.receiver.received).toEqual([]);
      expect(second.receiver.rejected.length).toBeGreaterThan(0);
    });

    it('a disabled endpoint receives nothing until enabled again; a deleted one nothing at all', async () => {
      const hook = await register({ enabled_events: ['payment_intent.created'] });
      await stripe.webhookEndpoints.update(hook.endpoint.id, { disabled: true });
      await pay();
      await mock.idle();
      expect(hook.receiver.received).toEqual([]);
      await stripe.webhookEndpoints.update(hook.endpoint.id, { disabled: false });
      const pi = await pay();
      await mock.idle();
      expect(hook.receiver.received.map((e) => (e.data.object as { id: string }).id)).toEqual([pi.id]);
      await stripe.webhookEndpoints.del(hook.endpoint.id);
      await pay();
      await mock.idle();
      expect(hook.receiver.received).toHaveLength(1);
    });

    it('a changed url and enabled_events take effect for the next events', async () => {
      const hook = await register({ enabled_events: ['payment_intent.created'] });
      const moved = await receiver();
      moved.receiver.secret = hook.endpoint.secret!;
      await stripe.webhookEndpoints.update(hook.endpoint.id, { url: moved.url, enabled_events: ['charge.succeeded'] });
      await pay();
      await mock.idle();
      expect(hook.receiver.received).toEqual([]);
      expect(moved.receiver.types()).toEqual(['charge.succeeded']);
    });

    it('retries an endpoint\'s failures on its own; delivery_success=false lists the event until that endpoint has it', async () => {
      const hook = await register({ enabled_events: ['payment_intent.created'] });
      hook.receiver.failNext = 1_000_000;
      const pi = await pay();
      const created = eventsOf(pi.id).find((e) => e.type === 'payment_intent.created')!;
      await waitFor(async () => (mock.deliveryState(created.id, hook.endpoint.id)?.attempts ?? 0) >= 2, 'a retry');
      const failing = await stripe.events.list({ delivery_success: false, limit: 100 });
      expect(failing.data.map((e) => e.id)).toContain(created.id);
      expect((await stripe.events.retrieve(created.id)).pending_webhooks).toBe(1);
      hook.receiver.failNext = 0;
      await mock.idle();
      expect(mock.deliveryState(created.id, hook.endpoint.id)).toMatchObject({ delivered: true });
      expect(mock.deliveryState(created.id, hook.endpoint.id)!.attempts).toBeGreaterThanOrEqual(3);
      expect(hook.receiver.received.map((e) => e.id)).toEqual([created.id]);
      expect((await stripe.events.list({ delivery_success: false, limit: 100 })).data.map((e) => e.id)).not.toContain(created.id);
      expect((await stripe.events.retrieve(created.id)).pending_webhooks).toBe(0);
    });

    it('an endpoint pinned to another API version gets that version in the envelope; the Events API keeps the mock\'s', async () => {
      const pinned = await register({ enabled_events: ['payment_intent.created'], api_version: '2024-06-20' });
      const current = await register({ enabled_events: ['payment_intent.created'] });
      const pi = await pay();
      await mock.idle();
      const event = eventsOf(pi.id).find((e) => e.type === 'payment_intent.created')!;
      expect(pinned.receiver.received[0]).toMatchObject({ id: event.id, api_version: '2024-06-20' });
      expect(current.receiver.received[0]).toMatchObject({ id: event.id, api_version: Stripe.API_VERSION });
      expect((await stripe.events.retrieve(event.id)).api_version).toBe(Stripe.API_VERSION);
    });

    it('the fault injection applies to endpoints as to the forwarding URL', async () => {
      const hook = await register({ enabled_events: ['*'] });
      mock.setFaults({ dropRate: 1 });
      const dropped = await pay();
      await mock.idle();
      expect(hook.receiver.received).toEqual([]);
      const created = eventsOf(dropped.id).find((e) => e.type === 'payment_intent.created')!;
      expect(mock.deliveryState(created.id, hook.endpoint.id)).toMatchObject({ dropped: true, delivered: false });
      mock.setFaults({ duplicateRate: 1 });
      const doubled = await pay();
      await mock.idle();
      const ids = hook.receiver.received.map((e) => e.id);
      expect(ids).toHaveLength(2 * eventsOf(doubled.id).length);
      expect(new Set(ids).size).toBe(eventsOf(doubled.id).length);
    });
  });
});
