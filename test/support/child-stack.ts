import Stripe from 'stripe';
import { Client } from 'pg';
import { MockPsp, MockPspOptions } from '../../src/mock-psp';
import { ChildApp } from './child-app';
import { createTestDatabase, testRedisUrl, uniqueQueuePrefix } from './services';

/**
 * The whole product with the app as a real process (`node dist/main.js`):
 * a fresh database, its own Bull prefix, the mock PSP in the test process.
 *
 * Why a child process: Nest 12 ships as ES modules, which Jest's CommonJS
 * runtime cannot load on Node 20 (it needs Node 24.9+ or a transform of
 * node_modules), while Node itself loads them fine. It also lets tests do
 * what a real deployment does: SIGKILL a process, run several instances.
 * Needs dist/ (`npx nest build`, or BUILD_DIST=1 for the global setup).
 */
/** The same values as test-app.ts, which cannot be imported here (it loads Nest in-process). */
export const TEST_ADMIN_KEY = 'test-admin-key-0123456789';
export const TEST_WEBHOOK_SECRET = 'whsec_test_settle_0123456789';

export interface ChildStack {
  url: string;
  apps: ChildApp[];
  mock: MockPsp;
  stripe: Stripe;
  db: Client;
  admin: { Authorization: string };
  databaseUrl: string;
  env: Record<string, string>;
  /** Starts one more instance on the same database and queue (extra env wins). */
  startApp(extra?: Record<string, string>): Promise<ChildApp>;
  stop(): Promise<void>;
}

export interface ChildStackOptions {
  env?: Record<string, string>;
  mock?: MockPspOptions;
  /** Deliver the mock's webhooks to the first app (default true). */
  forwardWebhooks?: boolean;
}

export async function startChildStack(options: ChildStackOptions = {}): Promise<ChildStack> {
  const database = await createTestDatabase();
  const mock = await MockPsp.start({ port: 0, webhookSecret: TEST_WEBHOOK_SECRET, timeScale: 0.01, ...options.mock });
  const env: Record<string, string> = {
    PORT: '0',
    DATABASE_URL: database.url,
    DATABASE_POOL_SIZE: '10',
    REDIS_URL: testRedisUrl(),
    QUEUE_PREFIX: uniqueQueuePrefix(),
    STRIPE_SECRET_KEY: 'sk_test_settle',
    STRIPE_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
    STRIPE_API_URL: mock.url,
    ADMIN_API_KEY: TEST_ADMIN_KEY,
    RECONCILE_INTERVAL_MS: '3600000',
    LOG_LEVEL: 'error',
    RATE_LIMIT_PER_MINUTE: '1000000',
    ...options.env,
  };
  const apps: ChildApp[] = [];
  const startApp = async (extra: Record<string, string> = {}) => {
    const app = await ChildApp.start({ ...env, ...extra });
    apps.push(app);
    return app;
  };
  const first = await startApp();
  if (options.forwardWebhooks !== false) mock.setForwardTo(`${first.url}/webhooks/stripe`);
  const db = new Client({ connectionString: database.url });
  await db.connect();
  const stripe = new Stripe('sk_test_settle', { host: '127.0.0.1', port: mock.port, protocol: 'http', telemetry: false, maxNetworkRetries: 2 });
  return {
    url: first.url,
    apps,
    mock,
    stripe,
    db,
    admin: { Authorization: `Bearer ${TEST_ADMIN_KEY}` },
    databaseUrl: database.url,
    env,
    startApp,
    stop: async () => {
      mock.setForwardTo(undefined);
      await Promise.all(apps.map((a) => a.stop('SIGTERM')));
      await db.end().catch(() => undefined);
      await mock.stop();
      await database.drop();
    },
  };
}

/** Signs a payload exactly as the PSP does, with the given secret and timestamp. */
export function signedHeader(payload: string, options: { secret?: string; timestamp?: number } = {}): string {
  return Stripe.webhooks.generateTestHeaderString({
    payload,
    secret: options.secret ?? TEST_WEBHOOK_SECRET,
    timestamp: options.timestamp ?? Math.floor(Date.now() / 1000),
  });
}
