import { Client } from 'pg';
import { execFileSync } from 'node:child_process';
import { createConnection } from 'node:net';
import { testDatabaseAdminUrl, testRedisUrl } from './services';

/**
 * Runs once before all suites: fails fast with one clear line when PostgreSQL
 * or Redis is not reachable, and builds dist/ for the tests that start the
 * compiled app as a child process (embedded launcher, SIGKILL recovery).
 */
export default async function globalSetup(): Promise<void> {
  const pg = new Client({ connectionString: testDatabaseAdminUrl() });
  try {
    await pg.connect();
    await pg.query('SELECT 1');
  } catch (err) {
    throw new Error(`Tests need PostgreSQL at ${testDatabaseAdminUrl()} (set TEST_DATABASE_URL): ${(err as Error).message}`);
  } finally {
    await pg.end().catch(() => undefined);
  }
  const redis = new URL(testRedisUrl());
  await new Promise<void>((resolve, reject) => {
    const socket = createConnection({ host: redis.hostname, port: Number(redis.port || 6379) });
    socket.once('connect', () => { socket.end(); resolve(); });
    socket.once('error', (err) => reject(new Error(`Tests need Redis at ${testRedisUrl()} (set TEST_REDIS_URL): ${err.message}`)));
  });
  // The launcher and child-process suites run the compiled app, so it must match the source under test.
  // SKIP_BUILD=1 saves the build when iterating on suites that do not need it.
  if (process.env.SKIP_BUILD !== '1') {
    execFileSync('npx', ['nest', 'build'], { stdio: 'inherit' });
  }
}
