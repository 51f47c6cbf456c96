import { INestApplicationContext } from '@nestjs/common';
import { Client } from 'pg';
import Stripe from 'stripe';
import { AppConfig } from '../../src/config/app-config';
import type { HistoryEntryView, OrderView, PaymentView } from '../../src/orders/dto/order.view';
import { loadConfig } from '../../src/config/env';
import { startApp } from '../../src/bootstrap';
import { MockPsp, MockPspOptions } from '../../src/mock-psp';
import { createTestDatabase, TEST_ADMIN_KEY, TEST_WEBHOOK_SECRET, testAppEnv } from './services';

export { TEST_ADMIN_KEY, TEST_WEBHOOK_SECRET } from './services';

/** GET /orders/:id as a test reads it: the API's own view type, with the payment a PaymentIntent order always has. */
export type OrderJson = Omit<OrderView, 'payment'> & { payment: PaymentView & { id: string; clientSecret: string } };
export type HistoryJson = HistoryEntryView;

export interface TestStack {
  url: string;
  app: INestApplicationContext;
  config: AppConfig;
  mock: MockPsp;
  /** The official SDK pointed at the mock PSP, as a checkout client would use it. */
  stripe: Stripe;
  admin: { Authorization: string };
  databaseUrl: string;
  /** A connection to the suite's database, for looking at what the app wrote. */
  db: Client;
  stop(): Promise<void>;
}

export interface TestStackOptions {
  env?: Record<string, string>;
  mock?: MockPspOptions;
  /** Deliver the mock's webhooks to the app (default true). */
  forwardWebhooks?: boolean;
}

/**
 * The whole product for one suite: a fresh PostgreSQL database, its own Bull
 * prefix on the real Redis, the mock PSP on a free port, the app on a free port.
 */
export async function startTestStack(options: TestStackOptions = {}): Promise<TestStack> {
  const database = await createTestDatabase();
  const mock = await MockPsp.start({ port: 0, webhookSecret: TEST_WEBHOOK_SECRET, timeScale: 0.01, ...options.mock });
  const config = loadConfig(testAppEnv(database.url, mock.url, options.env));
  const { app, url } = await startApp(config);
  if (!url) throw new Error('startTestStack needs an HTTP role');
  if (options.forwardWebhooks !== false) mock.setForwardTo(`${url}/webhooks/stripe`);
  const port = new URL(mock.url).port;
  const stripe = new Stripe('sk_test_settle', { host: '127.0.0.1', port, protocol: 'http', telemetry: false });
  const db = new Client({ connectionString: database.url });
  await db.connect();
  return {
    url,
    app,
    config,
    mock,
    stripe,
    admin: { Authorization: `Bearer ${TEST_ADMIN_KEY}` },
    databaseUrl: database.url,
    db,
    stop: async () => {
      mock.setForwardTo(undefined);
      await db.end();
      await app.close();
      await mock.stop();
      await database.drop();
    },
  };
}

/** A valid order body; pass overrides to vary it. */
export function orderBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    currency: 'usd',
    items: [
      { sku: 'TSHIRT-M', name: 'T-shirt', unitAmount: 1299, quantity: 2 },
      { sku: 'MUG', name: 'Mug', unitAmount: 850, quantity: 1 },
    ],
    customerEmail: 'ada@example.com',
    ...overrides,
  };
}
