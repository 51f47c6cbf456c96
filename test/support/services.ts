import { Client } from 'pg';
import { randomBytes } from 'node:crypto';

/** The PostgreSQL server tests create their own databases on. */
export function testDatabaseAdminUrl(): string {
  return process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

export function testRedisUrl(): string {
  return process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
}

/** A fresh, empty database for one suite, so no test ever sees leftovers. */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `settle_test_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: testDatabaseAdminUrl() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(testDatabaseAdminUrl());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new Client({ connectionString: testDatabaseAdminUrl() });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A key prefix of its own for each suite's Bull queues, so suites never share jobs. */
export function uniqueQueuePrefix(): string {
  return `settle-test-${randomBytes(4).toString('hex')}`;
}

export const TEST_ADMIN_KEY = 'test-admin-key-0123456789';
export const TEST_WEBHOOK_SECRET = 'whsec_test_settle_0123456789';

/** The environment every test app runs with (in-process or as a child process); `extra` wins. */
export function testAppEnv(databaseUrl: string, mockUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PORT: '0',
    DATABASE_URL: databaseUrl,
    DATABASE_POOL_SIZE: '10',
    REDIS_URL: testRedisUrl(),
    QUEUE_PREFIX: uniqueQueuePrefix(),
    STRIPE_SECRET_KEY: 'sk_test_settle',
    STRIPE_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
    STRIPE_API_URL: mockUrl,
    ADMIN_API_KEY: TEST_ADMIN_KEY,
    // Tests run the reconciler themselves (runOnce) when they mean to.
    RECONCILE_INTERVAL_MS: '3600000',
    LOG_LEVEL: 'error',
    RATE_LIMIT_PER_MINUTE: '1000000',
    ...extra,
  };
}
