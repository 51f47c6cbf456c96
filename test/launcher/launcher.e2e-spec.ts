import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChildApp } from '../support/child-app';
import { freePort } from '../../src/launcher/embedded-redis';
import { uniqueQueuePrefix } from '../support/services';

const dist = join(__dirname, '..', '..', 'dist');

describe('npm start: zero-setup launcher (embedded PGlite, found Redis, in-process mock PSP)', () => {
  let cwd: string;
  let app: ChildApp | undefined;

  beforeAll(() => {
    cwd = mkdtempSync(join(tmpdir(), 'settle-launcher-'));
  });
  afterAll(async () => {
    await app?.stop('SIGTERM');
    rmSync(cwd, { recursive: true, force: true });
  });

  it('boots with nothing configured, serves /health and creates an order with a clientSecret', async () => {
    const port = await freePort();
    app = await ChildApp.start(
      { PORT: String(port), MOCK_PSP_PORT: '0', QUEUE_PREFIX: uniqueQueuePrefix(), LOG_LEVEL: 'warn' },
      { script: 'launcher.js', cwd, timeoutMs: 90000 },
    );
    expect(app.output).toMatch(/PostgreSQL: embedded PGlite/);
    expect(app.output).toMatch(/PSP: bundled mock at http:\/\/127\.0\.0\.1:\d+/);
    const key = /ADMIN_API_KEY \(generated for this run\): (\S+)/.exec(app.output)?.[1];
    expect(key).toBeDefined();
    expect(existsSync(join(cwd, '.data', 'pglite'))).toBe(true);

    const health = await fetch(`${app.url}/health`);
    expect(health.status).toBe(200);
    expect(((await health.json()) as { details: unknown }).details).toMatchObject({ postgres: { status: 'up' }, redis: { status: 'up' } });

    const created = await fetch(`${app.url}/orders`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ currency: 'eur', items: [{ sku: 'BOOK', name: 'Book', unitAmount: 2500, quantity: 1 }], customerEmail: 'l@example.com' }),
    });
    expect(created.status).toBe(201);
    const order = (await created.json()) as { id: string; payment: { clientSecret: string } };
    expect(order.payment.clientSecret).toMatch(/^pi_\w+_secret_\w+/);

    const listed = await fetch(`${app.url}/orders`, { headers: { Authorization: `Bearer ${key}` } });
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { data: { id: string }[] }).data.map((o: { id: string }) => o.id)).toContain(order.id);

    expect(await app.stop('SIGTERM')).toBe(0);
    app = undefined;
  }, 120000);
});

describe('npm run start:prod: embeds nothing and names what is missing', () => {
  const run = (env: Record<string, string>) => spawnSync(process.execPath, [join(dist, 'main.js')], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 30000 });

  it('refuses to start without DATABASE_URL, in one line', () => {
    const result = run({});
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toBe('Invalid configuration: DATABASE_URL is required');
  });

  it('refuses a real key without a webhook secret', () => {
    const result = run({ DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres', STRIPE_SECRET_KEY: 'sk_test_x', ADMIN_API_KEY: 'x'.repeat(20) });
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toBe('Invalid configuration: STRIPE_WEBHOOK_SECRET is required when STRIPE_SECRET_KEY is set');
  });

  it('refuses to start without STRIPE_SECRET_KEY', () => {
    const result = run({ DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres' });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/STRIPE_SECRET_KEY is required/);
  });
});
