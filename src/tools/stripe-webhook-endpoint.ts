import { writeFileSync } from 'node:fs';
import { config as loadDotenv } from 'dotenv';
import Stripe from 'stripe';
import { HANDLED_EVENT_TYPES } from '../orders/handled-event-types';

/**
 * `npm run stripe:webhook-endpoint -- --url https://shop.example/webhooks/stripe [--secret-out FILE] [--recreate]`
 *
 * Creates the Stripe webhook endpoint for Settle, or updates the one that
 * already has that URL, with exactly the event types Settle handles and the
 * API version of the SDK Settle is built with. The signing secret is shown
 * only when the endpoint is created (Stripe never shows it again).
 * STRIPE_SECRET_KEY (and STRIPE_API_URL for the mock PSP) from the environment or .env.
 */

const USAGE = 'usage: npm run stripe:webhook-endpoint -- --url https://… [--secret-out FILE] [--recreate]';

export interface EndpointArgs {
  url: string;
  /** Write the signing secret to this file (mode 600) instead of printing it. */
  secretOut?: string;
  /** Replace an endpoint pinned to another API version (Stripe cannot change it in place). */
  recreate: boolean;
}

export function parseArgs(argv: readonly string[]): EndpointArgs {
  let url: string | undefined;
  let secretOut: string | undefined;
  let recreate = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--url' || arg === '--secret-out') {
      const value = argv[++i];
      if (value === undefined || value.startsWith('--')) throw new Error(`${arg} needs a value; ${USAGE}`);
      if (arg === '--url') url = value;
      else secretOut = value;
    } else if (arg === '--recreate') {
      recreate = true;
    } else {
      throw new Error(`unknown argument ${arg}; ${USAGE}`);
    }
  }
  if (!url) throw new Error(`--url is required; ${USAGE}`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`--url must be an absolute URL such as https://shop.example/webhooks/stripe, got "${url}"`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new Error(`--url must be http(s), got "${url}"`);
  return { url, secretOut, recreate };
}

/** The SDK for STRIPE_SECRET_KEY, pointed at STRIPE_API_URL when set (the backend's own client does the same). */
export function stripeFromEnv(env: NodeJS.ProcessEnv): Stripe {
  const key = env.STRIPE_SECRET_KEY;
  if (!key) throw new Error('STRIPE_SECRET_KEY is not set: the endpoint is created with the account\'s secret key (sk_test_… or sk_live_…)');
  const options: ConstructorParameters<typeof Stripe>[1] = { telemetry: false, maxNetworkRetries: 2 };
  if (env.STRIPE_API_URL) {
    const url = new URL(env.STRIPE_API_URL);
    options.host = url.hostname;
    options.protocol = url.protocol === 'http:' ? 'http' : 'https';
    options.port = url.port || (url.protocol === 'http:' ? 80 : 443);
  }
  return new Stripe(key, options);
}

export interface EndpointResult {
  action: 'created' | 'updated' | 'recreated';
  endpoint: Stripe.WebhookEndpoint;
  /** Only when created: Stripe shows it once. */
  secret?: string;
}

/** Creates or updates the endpoint for `args.url`; `say` gets each line for the operator. */
export async function setUpWebhookEndpoint(stripe: Stripe, args: EndpointArgs, say: (line: string) => void): Promise<EndpointResult> {
  const enabledEvents = [...HANDLED_EVENT_TYPES];
  const existing: Stripe.WebhookEndpoint[] = [];
  for await (const endpoint of stripe.webhookEndpoints.list({ limit: 100 })) {
    if (endpoint.url === args.url) existing.push(endpoint);
  }
  const current = existing[0];
  if (existing.length > 1) say(`Note: ${existing.length} endpoints have this URL; updating ${current!.id} and leaving ${existing.slice(1).map((e) => e.id).join(', ')} alone.`);

  const create = async (action: 'created' | 'recreated'): Promise<EndpointResult> => {
    const created = await stripe.webhookEndpoints.create({
      url: args.url,
      enabled_events: enabledEvents,
      api_version: Stripe.API_VERSION as Stripe.WebhookEndpointCreateParams.ApiVersion,
      description: 'Settle: payments and order status',
    });
    return { action, endpoint: created, secret: created.secret };
  };

  if (!current) return create('created');
  if (current.api_version !== Stripe.API_VERSION) {
    const pinned = current.api_version ?? "the account's default";
    if (!args.recreate) {
      throw new Error(
        `Endpoint ${current.id} sends events in API version ${pinned}, not the SDK's ${Stripe.API_VERSION}, and Stripe cannot change an endpoint's version. ` +
          'Rerun with --recreate to delete it and create a new one (with a new signing secret), or delete it in the Dashboard.',
      );
    }
    await stripe.webhookEndpoints.del(current.id);
    say(`Deleted ${current.id} (API version ${pinned}).`);
    return create('recreated');
  }
  const updated = await stripe.webhookEndpoints.update(current.id, { enabled_events: enabledEvents, disabled: false });
  return { action: 'updated', endpoint: updated };
}

async function main(): Promise<void> {
  loadDotenv({ quiet: true });
  let args: EndpointArgs;
  let stripe: Stripe;
  try {
    args = parseArgs(process.argv.slice(2));
    stripe = stripeFromEnv(process.env);
  } catch (err) {
    console.error((err as Error).message);
    process.exit(2);
  }
  const say = (line: string) => console.log(line);
  let result: EndpointResult;
  try {
    result = await setUpWebhookEndpoint(stripe, args, say);
  } catch (err) {
    console.error(err instanceof Stripe.errors.StripeError ? `Stripe refused: ${err.message}` : (err as Error).message);
    process.exit(1);
  }
  const { endpoint } = result;
  say(`${result.action === 'updated' ? 'Updated' : 'Created'} webhook endpoint ${endpoint.id} for ${endpoint.url}`);
  say(`API version: ${endpoint.api_version}`);
  say(`Event types (${endpoint.enabled_events.length}): ${endpoint.enabled_events.join(', ')}`);
  if (!result.secret) {
    say('Signing secret: unchanged (Stripe shows it only when the endpoint is created); keep STRIPE_WEBHOOK_SECRET as it is.');
    return;
  }
  if (args.secretOut) {
    writeFileSync(args.secretOut, `${result.secret}\n`, { mode: 0o600 });
    say(`Signing secret written to ${args.secretOut}; set STRIPE_WEBHOOK_SECRET to it. Stripe will not show it again.`);
  } else {
    say(`Signing secret (shown once; set STRIPE_WEBHOOK_SECRET to it): ${result.secret}`);
  }
}

if (require.main === module) void main();
