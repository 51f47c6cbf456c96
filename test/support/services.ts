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
