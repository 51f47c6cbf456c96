import 'reflect-metadata';
import { config as loadDotenv } from 'dotenv';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ConfigError, loadConfig } from './config/env';
import { startApp, stopOnSignals } from './bootstrap';
import { startEmbeddedPostgres } from './launcher/embedded-postgres';
import { chooseRedis } from './launcher/embedded-redis';
import { MockPsp, mockPspOptionsFromEnv } from './mock-psp';

loadDotenv({ quiet: true });

/**
 * `npm start`: zero setup. Whatever is not configured gets an embedded default
 * (CONTRACT section 1), and every choice is printed so nothing is a surprise.
 */
async function launch(): Promise<void> {
  const env: Record<string, string | undefined> = { ...process.env };
  const stops: Array<() => Promise<void>> = [];
  const say = (line: string) => console.log(`[settle] ${line}`);

  if (!env.DATABASE_URL) {
    const pool = Number(env.DATABASE_POOL_SIZE ?? 10);
    env.DATABASE_POOL_SIZE = String(pool);
    const pg = await startEmbeddedPostgres(join(process.cwd(), '.data'), pool + 2);
    stops.unshift(pg.stop);
    env.DATABASE_URL = pg.url;
    say(`PostgreSQL: embedded PGlite, data in .data/ (set DATABASE_URL to use your own)`);
  } else {
    say('PostgreSQL: DATABASE_URL');
  }

  const redis = await chooseRedis(env.REDIS_URL);
  if (!redis) {
    console.error('[settle] Redis: none found. Set REDIS_URL, start Redis on 127.0.0.1:6379, or install redis-server (apt-get install redis-server, brew install redis).');
    for (const stop of stops) await stop();
    process.exit(1);
  }
  stops.unshift(redis.stop);
  env.REDIS_URL = redis.url;
  say(`Redis: ${redis.url} (${redis.origin})`);

  let mock: MockPsp | undefined;
  if (!env.STRIPE_SECRET_KEY) {
    mock = await MockPsp.start(mockPspOptionsFromEnv(env));
    stops.unshift(() => (mock as MockPsp).stop());
    env.STRIPE_SECRET_KEY = 'sk_test_settle_local';
    env.STRIPE_API_URL = mock.url;
    env.STRIPE_WEBHOOK_SECRET = mock.webhookSecret;
    say(`PSP: bundled mock at ${mock.url}, webhooks signed with ${mock.webhookSecret} (set STRIPE_SECRET_KEY for Stripe)`);
  } else {
    say(`PSP: ${env.STRIPE_API_URL ?? 'Stripe'} with STRIPE_SECRET_KEY`);
  }

  if (!env.ADMIN_API_KEY) {
    env.ADMIN_API_KEY = randomBytes(24).toString('base64url');
    say(`ADMIN_API_KEY (generated for this run): ${env.ADMIN_API_KEY}`);
  }

  const config = loadConfig(env);
  const { app, url } = await startApp(config);
  if (mock && url && !env.MOCK_PSP_FORWARD_TO) mock.setForwardTo(`${url}/webhooks/stripe`);
  say(url ? `Settle (${config.role}) listening on ${url}` : `Settle (${config.role}) started`);

  stopOnSignals(app, async () => {
    for (const stop of stops) await stop().catch((err) => console.error(`[settle] while stopping: ${(err as Error).message}`));
  });
}

launch().catch((err) => {
  console.error(err instanceof ConfigError ? err.message : `[settle] failed to start: ${(err as Error).message}`);
  process.exit(1);
});
