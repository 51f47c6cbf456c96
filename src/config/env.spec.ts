import { ConfigError, loadConfig } from './env';

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
  ])('refuses %j naming %s in one line', (override, variable) => {
    const err = errorFor({ ...valid, ...override });
    expect(err.variable).toBe(variable);
    expect(err.message).toContain(variable);
    expect(err.message).not.toContain('\n');
  });
});
