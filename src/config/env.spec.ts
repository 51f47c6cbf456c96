import { ConfigError, loadConfig, redactSecrets, refuseWeakSecrets } from './env';

const valid = {
  DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/settle',
  STRIPE_SECRET_KEY: 'sk_test_abc',
  STRIPE_WEBHOOK_SECRET: 'whsec_one',
  ADMIN_API_KEY: 'a-long-enough-admin-key',
};

function errorFor(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies the contract defaults', () => {
    const config = loadConfig(valid);
    expect(config).toMatchObject({
      port: 3000,
      role: 'all',
      redisUrl: 'redis://127.0.0.1:6379',
      webhookToleranceSeconds: 300,
      reconcileIntervalMs: 60000,
      reconcileStaleAfterMs: 300000,
    });
    expect(config.stripe).toEqual({ secretKey: 'sk_test_abc', webhookSecrets: ['whsec_one'], apiUrl: undefined });
  });

  it('leaves the webhook allowlist and TRUST_PROXY off by default, the refused-delivery limit at 60', () => {
    const config = loadConfig(valid);
    expect(config.webhookAllowedIps).toBeUndefined();
    expect(config.trustProxy).toBe(false);
    expect(config.webhookRefusedPerMinute).toBe(60);
  });

  it.each([
    ['false', false],
    ['true', true],
    ['2', 2],
    ['loopback', ['loopback']],
    ['loopback, 10.0.0.0/8 ,2001:db8::/32', ['loopback', '10.0.0.0/8', '2001:db8::/32']],
  ])('reads TRUST_PROXY=%s as Express would', (raw, setting) => {
    expect(loadConfig({ ...valid, TRUST_PROXY: raw }).trustProxy).toEqual(setting);
  });

  it('reads WEBHOOK_ALLOWED_IPS: stripe expands to the published list, other entries stay', () => {
    const entries = loadConfig({ ...valid, WEBHOOK_ALLOWED_IPS: 'stripe, 127.0.0.2' }).webhookAllowedIps ?? [];
    expect(entries).toContain('54.187.216.72');
    expect(entries[entries.length - 1]).toBe('127.0.0.2');
  });

  it('serves the demo storefront only when DEMO_STOREFRONT=true (a deployment does not get a shop by default)', () => {
    expect(loadConfig(valid).demoStorefront).toBe(false);
    expect(loadConfig({ ...valid, DEMO_STOREFRONT: 'true' }).demoStorefront).toBe(true);
    expect(loadConfig({ ...valid, DEMO_STOREFRONT: 'false' }).demoStorefront).toBe(false);
  });

  it('accepts several webhook secrets for rotation', () => {
    expect(loadConfig({ ...valid, STRIPE_WEBHOOK_SECRET: 'whsec_old, whsec_new' }).stripe.webhookSecrets).toEqual(['whsec_old', 'whsec_new']);
  });

  it.each([
    [{ DATABASE_URL: '' }, 'DATABASE_URL'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ STRIPE_SECRET_KEY: 'pk_test_abc' }, 'STRIPE_SECRET_KEY'],
    [{ STRIPE_WEBHOOK_SECRET: '' }, 'STRIPE_WEBHOOK_SECRET'],
    [{ STRIPE_WEBHOOK_SECRET: 'whsec_a,secret' }, 'STRIPE_WEBHOOK_SECRET'],
    [{ ADMIN_API_KEY: 'short' }, 'ADMIN_API_KEY'],
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ APP_ROLE: 'cron' }, 'APP_ROLE'],
    [{ WEBHOOK_TOLERANCE_SECONDS: '0' }, 'WEBHOOK_TOLERANCE_SECONDS'],
    [{ RECONCILE_INTERVAL_MS: '-5' }, 'RECONCILE_INTERVAL_MS'],
    [{ STRIPE_API_URL: 'localhost:12111' }, 'STRIPE_API_URL'],
    [{ REDIS_URL: 'http://x' }, 'REDIS_URL'],
    [{ TRUST_PROXY: 'yes' }, 'TRUST_PROXY'],
    [{ DEMO_STOREFRONT: 'yes' }, 'DEMO_STOREFRONT'],
    [{ DEMO_STOREFRONT: '1' }, 'DEMO_STOREFRONT'],
    [{ TRUST_PROXY: 'loopback,10.0.0.0/33' }, 'TRUST_PROXY'],
    [{ WEBHOOK_ALLOWED_IPS: 'stripe,example.com' }, 'WEBHOOK_ALLOWED_IPS'],
    [{ WEBHOOK_ALLOWED_IPS: ',' }, 'WEBHOOK_ALLOWED_IPS'],
    [{ WEBHOOK_REFUSED_PER_MINUTE: '-1' }, 'WEBHOOK_REFUSED_PER_MINUTE'],
  ])('refuses %j naming %s in one line', (override, variable) => {
    const err = errorFor({ ...valid, ...override });
    expect(err.variable).toBe(variable);
    expect(err.message).toContain(variable);
    expect(err.message).not.toContain('\n');
  });
});

describe('secrets', () => {
  it('turns rate limiting off by default (0) and accepts a METRICS_TOKEN', () => {
    expect(loadConfig(valid).rateLimitPerMinute).toBe(0);
    expect(loadConfig({ ...valid, METRICS_TOKEN: 'prometheus-scrape-9f3k2' }).metricsToken).toBe('prometheus-scrape-9f3k2');
    expect(errorFor({ ...valid, METRICS_TOKEN: 'short' }).variable).toBe('METRICS_TOKEN');
  });

  it('never prints the password of a bad DATABASE_URL or REDIS_URL', () => {
    for (const [variable, value] of [
      ['DATABASE_URL', 'mysql://settle:hunter2-secret@db/settle'],
      ['DATABASE_URL', 'postgres://settle:hunter2-secret@[db/settle'],
      ['REDIS_URL', 'http://:hunter2-secret@redis:6379'],
      ['REDIS_URL', 'redis://:hunter2-secret@[redis'],
    ] as const) {
      const err = errorFor({ ...valid, [variable]: value });
      expect(err.variable).toBe(variable);
      expect(err.message).not.toContain('hunter2');
    }
  });

  it('refuses an sk_live_ key with an http:// STRIPE_API_URL', () => {
    expect(errorFor({ ...valid, STRIPE_SECRET_KEY: 'sk_live_abc', STRIPE_API_URL: 'http://api.example.com' }).variable).toBe('STRIPE_API_URL');
    expect(loadConfig({ ...valid, STRIPE_SECRET_KEY: 'sk_live_abc', STRIPE_API_URL: 'https://api.example.com' }).stripe.apiUrl).toBe('https://api.example.com');
    expect(loadConfig({ ...valid, STRIPE_API_URL: 'http://127.0.0.1:12111' }).stripe.apiUrl).toBe('http://127.0.0.1:12111');
  });

  it('redacts passwords and keys from a connection error message', () => {
    const config = loadConfig({ ...valid, DATABASE_URL: 'postgres://settle:p%40ss-word@db/settle', REDIS_URL: 'redis://:redis-pass@r:6379' });
    const text = redactSecrets('failed postgres://settle:p%40ss-word@db/settle p@ss-word redis-pass a-long-enough-admin-key', config);
    expect(text).not.toMatch(/p%40ss|p@ss|redis-pass|a-long-enough-admin-key/);
  });

  it.each([
    [{ STRIPE_WEBHOOK_SECRET: 'whsec_mock_settle_local' }, 'STRIPE_WEBHOOK_SECRET'],
    [{ STRIPE_WEBHOOK_SECRET: 'whsec_new,whsec_mock_settle_local' }, 'STRIPE_WEBHOOK_SECRET'],
    [{ ADMIN_API_KEY: 'aaaaaaaaaaaaaaaa' }, 'ADMIN_API_KEY'],
    [{ ADMIN_API_KEY: 'abababababababababab' }, 'ADMIN_API_KEY'],
  ])('refuses %j for a deployment, naming %s in one line', (override, variable) => {
    const config = loadConfig({ ...valid, ...override });
    let err: unknown;
    try {
      refuseWeakSecrets(config);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).variable).toBe(variable);
    expect((err as ConfigError).message).not.toContain('\n');
  });

  it('accepts the test suites\' admin key and a generated one', () => {
    expect(() => refuseWeakSecrets(loadConfig({ ...valid, ADMIN_API_KEY: 'test-admin-key-0123456789' }))).not.toThrow();
    expect(() => refuseWeakSecrets(loadConfig(valid))).not.toThrow();
  });
});
