import 'reflect-metadata';
import { config as loadDotenv } from 'dotenv';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ConfigError, loadConfig } from './config/env';
import { startApp, stopOnSignals } from './bootstrap';
import { startEmbeddedPostgres } from './launcher/embedded-postgres';
import { chooseRedis } from './launcher/embedded-redis';
import { MockPsp, mockPspOptionsFromEnv } from './mock-psp';
import { LaunchRefused, lockDataDir, mockWebhookSecret } from './launcher/data-dir';

loadDotenv({ quiet: true });

/**
 * `npm start`: zero setup. Whatever is not configured gets an embedded default
 * (CONTRACT section 1), and every choice is printed so nothing is a surprise.
 */
async function launch(): Promise<void> {
  const env: Record<string, string | undefined> = { ...process.env };
  const stops: Array<() => Promise<void>> = [];
  const say = (line: string) => console.log(`[settle] ${line}`);
  const dataDir = join(process.cwd(), '.data');

  // A machine's own tool: reachable from this machine only unless HOST says otherwise.
  env.HOST ??= '127.0.0.1';
  // No load balancer to drain in front of npm start.
  env.SHUTDOWN_DRAIN_MS ??= '0';
  // Something to click on: the demo shop at /, against whichever PSP is chosen below.
  env.DEMO_STOREFRONT ??= 'true';

  const embeddedDatabase = !env.DATABASE_URL;
  if (embeddedDatabase) {
    lockDataDir(dataDir, '.data/');
    // PGlite is one PostgreSQL session, served one exchange or transaction at a
    // time: two connections, one the reconciler holds for its pass and one
    // everything else (the intake included) queues for; more would only queue too.
    if (env.DATABASE_POOL_SIZE && env.DATABASE_POOL_SIZE !== '2') say(`DATABASE_POOL_SIZE=${env.DATABASE_POOL_SIZE} ignored: the embedded database takes two connections to its one session`);
    env.DATABASE_POOL_SIZE = '2';
    const pg = await startEmbeddedPostgres(dataDir);
    stops.unshift(pg.stop);
    env.DATABASE_URL = pg.url;
    say(`PostgreSQL: embedded PGlite, data in .data/, one session, this process only (set DATABASE_URL for throughput or several processes)`);
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
    // Never the public default from the source: anyone who can reach the app could sign with it.
    const secret = env.MOCK_PSP_WEBHOOK_SECRET ? undefined : mockWebhookSecret(dataDir);
    mock = await MockPsp.start(mockPspOptionsFromEnv({ ...env, MOCK_PSP_WEBHOOK_SECRET: env.MOCK_PSP_WEBHOOK_SECRET ?? secret?.secret }));
    stops.unshift(() => (mock as MockPsp).stop());
    env.STRIPE_SECRET_KEY = 'sk_test_settle_local';
    env.STRIPE_API_URL = mock.url;
    env.STRIPE_WEBHOOK_SECRET = mock.webhookSecret;
    say(`PSP: bundled mock at ${mock.url} (set STRIPE_SECRET_KEY for Stripe)`);
    say(
      secret
        ? `MOCK_PSP_WEBHOOK_SECRET (${secret.created ? 'generated' : 'kept'} in .data/mock-webhook-secret): ${mock.webhookSecret}`
        : `MOCK_PSP_WEBHOOK_SECRET (set): ${mock.webhookSecret}`,
    );
  } else {
    say(`PSP: ${env.STRIPE_API_URL ?? 'Stripe'} with STRIPE_SECRET_KEY`);
  }

  if (!env.ADMIN_API_KEY) {
    env.ADMIN_API_KEY = randomBytes(24).toString('base64url');
    say(`ADMIN_API_KEY (generated for this run): ${env.ADMIN_API_KEY}`);
  }

  const config = { ...loadConfig(env), databaseOneSession: embeddedDatabase };
  const { app, url } = await startApp(config);
  if (mock && url && !env.MOCK_PSP_FORWARD_TO) mock.setForwardTo(`${url}/webhooks/stripe`);
  say(url ? `Settle (${config.role}) listening on ${url}` : `Settle (${config.role}) started`);
  if (url && config.demoStorefront) say(`Demo storefront: ${url}/ (DEMO_STOREFRONT=false turns it off)`);

  stopOnSignals(app, async () => {
    for (const stop of stops) await stop().catch((err) => console.error(`[settle] while stopping: ${(err as Error).message}`));
  });
}

launch().catch((err) => {
  if (err instanceof LaunchRefused) console.error(`[settle] ${err.message}`);
  else console.error(err instanceof ConfigError ? err.message : `[settle] failed to start: ${(err as Error).message}`);
  process.exit(1);
});
