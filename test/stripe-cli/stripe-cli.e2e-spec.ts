import request from 'supertest';
import { MockPsp } from '../../src/mock-psp';
import { orderBody, startTestStack, TEST_WEBHOOK_SECRET, TestStack } from '../support/test-app';
import { waitFor } from '../support/wait';
import { CliHome, CliProcess } from './cli';

/**
 * The official Stripe CLI against the mock PSP, as a developer would use it:
 * `stripe trigger` drives the mock's API, and `stripe listen` forwards the
 * mock's events to the backend.
 */

const API_KEY = 'sk_test_settle_cli';

/**
 * What each trigger must leave in the mock's event log: the events real
 * Stripe sends for the same fixture (the CLI fixture's requests are listed in
 * the mock's notes; real Stripe may add charge.updated and the like).
 */
const TRIGGERS: Array<[string, string[]]> = [
  ['payment_intent.succeeded', ['payment_intent.created', 'payment_intent.succeeded', 'charge.succeeded']],
  ['payment_intent.payment_failed', ['payment_intent.created', 'payment_intent.payment_failed', 'charge.failed']],
  ['payment_intent.canceled', ['payment_intent.created', 'payment_intent.canceled']],
  ['payment_intent.requires_action', ['payment_intent.created', 'payment_intent.requires_action']],
  // SEPA Direct Debit: processing first, then (later) settled.
  ['payment_intent.processing', ['payment_intent.created', 'payment_intent.processing', 'charge.pending', 'payment_intent.succeeded', 'charge.succeeded']],
  ['payment_intent.amount_capturable_updated', ['payment_intent.created', 'payment_intent.amount_capturable_updated', 'charge.succeeded']],
  ['charge.captured', ['payment_intent.created', 'payment_intent.amount_capturable_updated', 'charge.captured', 'payment_intent.succeeded']],
  ['charge.refunded', ['payment_intent.created', 'payment_intent.succeeded', 'charge.succeeded', 'charge.refunded', 'refund.created']],
  ['charge.dispute.created', ['payment_intent.created', 'payment_intent.succeeded', 'charge.succeeded', 'charge.dispute.created']],
  // The dispute fixtures list the dispute right after confirming, then update its metadata or close it.
  ['charge.dispute.updated', ['payment_intent.created', 'payment_intent.succeeded', 'charge.succeeded', 'charge.dispute.created', 'charge.dispute.updated']],
  ['charge.dispute.closed', ['payment_intent.created', 'payment_intent.succeeded', 'charge.succeeded', 'charge.dispute.created', 'charge.dispute.closed']],
  // A refund whose metadata the fixture then updates.
  ['charge.refund.updated', ['payment_intent.created', 'charge.succeeded', 'charge.refunded', 'refund.created', 'refund.updated', 'charge.refund.updated']],
  ['charge.succeeded', ['payment_intent.created', 'payment_intent.succeeded', 'charge.succeeded']],
  ['charge.failed', ['payment_intent.created', 'payment_intent.payment_failed', 'charge.failed']],
  // Checkout: a product and a price, a session, then the session paid through /v1/payment_pages/:id/confirm
  // (a card; SEPA Direct Debit for the async ones, whose outcome follows a moment later) or expired.
  ['checkout.session.completed', ['product.created', 'price.created', 'payment_intent.created', 'charge.succeeded', 'payment_intent.succeeded', 'checkout.session.completed']],
  ['checkout.session.async_payment_succeeded', ['payment_intent.created', 'payment_intent.processing', 'checkout.session.completed', 'payment_intent.succeeded', 'checkout.session.async_payment_succeeded']],
  ['checkout.session.async_payment_failed', ['payment_intent.created', 'payment_intent.processing', 'checkout.session.completed', 'payment_intent.payment_failed', 'checkout.session.async_payment_failed']],
  ['checkout.session.expired', ['product.created', 'price.created', 'checkout.session.expired']],
];


describe('stripe trigger against the mock PSP', () => {
  let mock: MockPsp;
  const home = new CliHome();

  beforeAll(async () => {
    mock = await MockPsp.start({ port: 0, timeScale: 0.01 });
  });
  afterAll(async () => {
    await mock.stop();
    home.remove();
  });

  async function trigger(name: string, expected: string[]): Promise<void> {
    const before = mock.events().length;
    const result = await home.run(['trigger', name, '--api-base', mock.url, '--api-key', API_KEY]);
    expect({ code: result.code, output: result.stdout + result.stderr }).toEqual({ code: 0, output: expect.stringContaining('Trigger succeeded!') });
    await mock.idle();
    const types = mock.events().slice(before).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(expected));
  }

  it.each(TRIGGERS)('%s succeeds and the mock emits what Stripe would', trigger);

  it('reports a failure when the mock refuses the API key', async () => {
    // The CLI itself refuses publishable keys, so this one reaches the mock and is refused there.
    const result = await home.run(['trigger', 'payment_intent.succeeded', '--api-base', mock.url, '--api-key', 'sk_test_not-a-key-0000']);
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toMatch(/Trigger failed: Request failed, status=401/);
  });
});

describe('stripe listen forwarding the mock PSP to the backend', () => {
  let stack: TestStack;
  const home = new CliHome();
  let listen: CliProcess | undefined;

  beforeAll(async () => {
    // The mock does not deliver webhooks itself here: every event reaches the app through the CLI.
    stack = await startTestStack({ forwardWebhooks: false });
  });
  afterAll(async () => {
    await listen?.stop();
    await stack?.stop();
    home.remove();
  });

  const stored = async (id: string) =>
    ((await stack.db.query('SELECT type, status, source FROM webhook_events WHERE id = $1', [id])).rows[0] as { type: string; status: string; source: string } | undefined);

  async function startListen(...args: string[]): Promise<CliProcess> {
    const cli = home.start(['listen', '--skip-update', '--api-base', stack.mock.url, '--api-key', API_KEY, '--forward-to', `${stack.url}/webhooks/stripe`, ...args]);
    // The mock's session secret is its webhook secret, which the backend is configured with.
    await cli.waitFor(new RegExp(`Ready! .*Your webhook signing secret is ${TEST_WEBHOOK_SECRET}`));
    return cli;
  }

  it('--print-secret prints the secret the backend verifies with', async () => {
    const result = await home.run(['listen', '--api-base', stack.mock.url, '--api-key', API_KEY, '--print-secret']);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(TEST_WEBHOOK_SECRET);
  });

  it('--all-snapshot: a triggered event is forwarded, verified, stored and processed', async () => {
    listen = await startListen('--all-snapshot');
    const before = stack.mock.events().length;
    const result = await home.run(['trigger', 'payment_intent.succeeded', '--api-base', stack.mock.url, '--api-key', API_KEY]);
    expect(result.code).toBe(0);
    const succeeded = (await waitFor(async () => stack.mock.events().slice(before).find((e) => e.type === 'payment_intent.succeeded'), 'the mock event'))!;

    // The CLI printed the app's 200 for it, and the app stored it under the event's id and then finished with it
    // (a PaymentIntent no order owns is recorded as ignored).
    await listen.waitFor(new RegExp(`<--\\s+\\[200\\] POST ${stack.url}/webhooks/stripe \\[${succeeded.id}\\]`));
    const row = await waitFor(async () => {
      const r = await stored(succeeded.id);
      return r && (r.status === 'processed' || r.status === 'ignored') ? r : undefined;
    }, 'the event processed');
    expect(row).toMatchObject({ type: 'payment_intent.succeeded', source: 'webhook' });
    await listen.stop();
    listen = undefined;
  });

  it('--all-snapshot: an order paid at the mock becomes paid through the CLI-forwarded webhooks', async () => {
    listen = await startListen('--all-snapshot');
    const order = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body as { id: string; payment: { id: string } };
    await stack.stripe.paymentIntents.confirm(order.payment.id, { payment_method: 'pm_card_visa' });
    await waitFor(async () => (await request(stack.url).get(`/orders/${order.id}`)).body.status === 'paid', 'the order to be paid');
    const succeeded = stack.mock.events().find((e) => e.type === 'payment_intent.succeeded' && (e.data.object as { id: string }).id === order.payment.id);
    expect(succeeded).toBeDefined();
    expect(await stored(succeeded!.id)).toMatchObject({ status: 'processed', source: 'webhook' });
    await listen.stop();
    listen = undefined;
  });

  it('--events forwards only the listed types', async () => {
    listen = await startListen('--events', 'charge.succeeded');
    const before = stack.mock.events().length;
    const result = await home.run(['trigger', 'payment_intent.succeeded', '--api-base', stack.mock.url, '--api-key', API_KEY]);
    expect(result.code).toBe(0);
    const events = (await waitFor(async () => {
      const list = stack.mock.events().slice(before);
      return list.some((e) => e.type === 'charge.succeeded') && list.some((e) => e.type === 'payment_intent.succeeded') ? list : undefined;
    }, 'the mock events'))!;
    const charge = events.find((e) => e.type === 'charge.succeeded')!;
    const intent = events.find((e) => e.type === 'payment_intent.succeeded')!;
    await listen.waitFor(new RegExp(`<--\\s+\\[200\\] POST \\S+ \\[${charge.id}\\]`));
    await waitFor(async () => stored(charge.id), 'the charge event stored');
    // Give a wrongly forwarded event time to arrive before saying it did not.
    await new Promise((r) => setTimeout(r, 500));
    expect(await stored(intent.id)).toBeUndefined();
    expect(listen.output()).not.toContain(intent.id);
    await listen.stop();
    listen = undefined;
  });
});
