import Stripe from 'stripe';
import { Client } from 'pg';
import { MockPsp } from '../../src/mock-psp';
import { ChildApp } from './child-app';
import type { TestStackOptions } from './test-app';
import { createTestDatabase, TEST_WEBHOOK_SECRET, testAppEnv } from './services';

/**
 * The whole product with the app as a real process (`node dist/main.js`):
 * a fresh database, its own Bull prefix, the mock PSP in the test process.
 *
 * A real process lets tests do what a real deployment does: SIGKILL it,
 * SIGTERM it under load, run several instances, read its output. Needs dist/
 * (the global setup builds it).
 */
export { TEST_ADMIN_KEY, TEST_WEBHOOK_SECRET } from './services';

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

/** The in-process stack's options; webhooks are forwarded to the first app. */
export type ChildStackOptions = TestStackOptions;

export async function startChildStack(options: ChildStackOptions = {}): Promise<ChildStack> {
  const database = await createTestDatabase();
  const mock = await MockPsp.start({ port: 0, webhookSecret: TEST_WEBHOOK_SECRET, timeScale: 0.01, ...options.mock });
  const env = testAppEnv(database.url, mock.url, options.env);
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
    admin: { Authorization: `Bearer ${env.ADMIN_API_KEY}` },
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
