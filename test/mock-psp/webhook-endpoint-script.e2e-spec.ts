import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Stripe from 'stripe';
import { MockPsp } from '../../src/mock-psp';
import { HANDLED_EVENT_TYPES } from '../../src/orders/handled-event-types';
import { mockSdk, VerifyingReceiver } from './support';

/** The compiled script, as `npm run stripe:webhook-endpoint` runs it (global setup builds dist/). */
const SCRIPT = resolve(__dirname, '../../dist/tools/stripe-webhook-endpoint.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `npm run stripe:webhook-endpoint` against the mock PSP: it registers the
 * endpoint with exactly the event types the backend handles and the SDK's API
 * version, and the secret it prints verifies what the mock then delivers.
 */
describe('stripe:webhook-endpoint against the mock PSP', () => {
  let mock: MockPsp;
  let stripe: Stripe;
  const receivers: VerifyingReceiver[] = [];
  // Runs outside the repository so no .env there changes what the script sees.
  const cwd = mkdtempSync(join(tmpdir(), 'settle-endpoint-script-'));

  beforeAll(async () => {
    mock = await MockPsp.start({ port: 0, timeScale: 0.01 });
    stripe = mockSdk(mock);
  });
  afterAll(async () => {
    await mock.stop();
    await Promise.all(receivers.map((r) => r.stop()));
    rmSync(cwd, { recursive: true, force: true });
  });

  function run(args: string[], env: NodeJS.ProcessEnv = { STRIPE_SECRET_KEY: 'sk_test_endpoint_script', STRIPE_API_URL: mock.url }): Promise<Run> {
    return new Promise((done) => {
      execFile(process.execPath, [SCRIPT, ...args], { cwd, env: { PATH: process.env.PATH, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
        done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  }

  async function receiver(): Promise<{ receiver: VerifyingReceiver; url: string }> {
    const r = new VerifyingReceiver();
    receivers.push(r);
    return { receiver: r, url: await r.start() };
  }

  const endpointsFor = async (url: string) => (await stripe.webhookEndpoints.list({ limit: 100 })).data.filter((e) => e.url === url);

  it('creates the endpoint once, updates it after, and the printed secret verifies exactly the handled types', async () => {
    const { receiver: shop, url } = await receiver();
    const created = await run(['--url', url]);
    expect(created).toMatchObject({ code: 0, stderr: '' });
    expect(created.stdout).toContain(`Created webhook endpoint we_`);
    expect(created.stdout).toContain(`API version: ${Stripe.API_VERSION}`);
    const secret = /Signing secret \(shown once; set STRIPE_WEBHOOK_SECRET to it\): (whsec_\w+)/.exec(created.stdout)?.[1];
    expect(secret).toBeDefined();

    let endpoints = await endpointsFor(url);
    expect(endpoints).toHaveLength(1);
    expect(endpoints[0]).toMatchObject({ api_version: Stripe.API_VERSION, status: 'enabled', enabled_events: [...HANDLED_EVENT_TYPES] });

    // Someone narrowed and disabled it by hand; running again puts it back, keeping the same endpoint and secret.
    await stripe.webhookEndpoints.update(endpoints[0]!.id, { enabled_events: ['charge.succeeded'], disabled: true });
    const updated = await run(['--url', url]);
    expect(updated.code).toBe(0);
    expect(updated.stdout).toContain(`Updated webhook endpoint ${endpoints[0]!.id}`);
    expect(updated.stdout).toContain('Signing secret: unchanged');
    expect(updated.stdout).not.toMatch(/whsec_/);
    endpoints = await endpointsFor(url);
    expect(endpoints).toHaveLength(1);
    expect(endpoints[0]).toMatchObject({ status: 'enabled', enabled_events: [...HANDLED_EVENT_TYPES] });

    // Deliveries verify with the printed secret, and only handled types arrive.
    shop.secret = secret!;
    const customer = await stripe.customers.create({ email: 'ada@example.com' });
    const pi = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true, customer: customer.id });
    await stripe.refunds.create({ payment_intent: pi.id });
    await mock.idle();
    expect(shop.rejected).toEqual([]);
    expect(shop.types()).toEqual(['payment_intent.created', 'charge.succeeded', 'payment_intent.succeeded', 'charge.refunded', 'refund.created']);
    expect(mock.events().some((e) => e.type === 'customer.created')).toBe(true);
  });

  it('--secret-out writes the secret to a private file instead of printing it', async () => {
    const { url } = await receiver();
    const file = join(cwd, 'webhook-secret');
    const result = await run(['--url', url, '--secret-out', file]);
    expect(result.code).toBe(0);
    const secret = readFileSync(file, 'utf8').trim();
    expect(secret).toMatch(/^whsec_\w+$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(result.stdout).toContain(`Signing secret written to ${file}`);
    expect(result.stdout).not.toContain(secret);
  });

  it('an endpoint pinned to another API version is refused, or replaced with --recreate', async () => {
    const { url } = await receiver();
    const old = await stripe.webhookEndpoints.create({ url, enabled_events: ['*'], api_version: '2024-06-20' });
    const refused = await run(['--url', url]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`Endpoint ${old.id} sends events in API version 2024-06-20, not the SDK's ${Stripe.API_VERSION}`);
    expect(await endpointsFor(url)).toHaveLength(1);

    const replaced = await run(['--url', url, '--recreate']);
    expect(replaced.code).toBe(0);
    expect(replaced.stdout).toContain(`Deleted ${old.id}`);
    expect(replaced.stdout).toMatch(/Signing secret \(shown once; set STRIPE_WEBHOOK_SECRET to it\): whsec_\w+/);
    const endpoints = await endpointsFor(url);
    expect(endpoints).toHaveLength(1);
    expect(endpoints[0]!.id).not.toBe(old.id);
    expect(endpoints[0]!.api_version).toBe(Stripe.API_VERSION);
  });

  it('bad usage or a missing key stops with one line and exit code 2; a refused key with exit code 1', async () => {
    const noUrl = await run([]);
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr.trim()).toBe('--url is required; usage: npm run stripe:webhook-endpoint -- --url https://… [--secret-out FILE] [--recreate]');
    const badUrl = await run(['--url', 'shop.example/hook']);
    expect(badUrl).toMatchObject({ code: 2, stderr: expect.stringContaining('--url must be an absolute URL') });
    const noKey = await run(['--url', 'https://shop.example/hook'], { STRIPE_API_URL: mock.url });
    expect(noKey).toMatchObject({ code: 2, stderr: expect.stringContaining('STRIPE_SECRET_KEY is not set') });
    const liveKey = await run(['--url', 'https://shop.example/hook'], { STRIPE_SECRET_KEY: 'sk_live_not_for_the_mock', STRIPE_API_URL: mock.url });
    expect(liveKey).toMatchObject({ code: 1, stderr: expect.stringContaining('Stripe refused: Invalid API Key') });
  });
});
