import { ConfigError, loadConfig } from '../config/env';

const base = {
  DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/settle',
  STRIPE_SECRET_KEY: 'sk_test_abc',
  STRIPE_WEBHOOK_SECRET: 'whsec_one',
  ADMIN_API_KEY: 'a-long-enough-admin-key',
};
const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

function problem(env: Record<string, string>): string {
  try {
    loadConfig({ ...base, ...env });
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return 'no error';
}

describe('ORDER_EVENTS_* configuration', () => {
  it('posts nowhere by default, with the 72-hour retry window', () => {
    expect(loadConfig(base).orderEvents).toEqual({ endpoints: [], secret: undefined, retryBaseMs: 1000, giveUpAfterMs: 72 * 3600 * 1000, timeoutMs: 5000, streamHeartbeatMs: 15000 });
  });

  it('takes several endpoints, comma-separated', () => {
    const config = loadConfig({ ...base, ORDER_EVENTS_URL: 'https://shop.example/hooks, http://127.0.0.1:8080/e', ORDER_EVENTS_SECRET: SECRET });
    expect(config.orderEvents.endpoints).toEqual(['https://shop.example/hooks', 'http://127.0.0.1:8080/e']);
    expect(config.orderEvents.secret).toBe(SECRET);
  });

  it('names the variable when a URL has no secret, a URL is bad, or the secret is not whsec_ + base64', () => {
    expect(problem({ ORDER_EVENTS_URL: 'https://shop.example/hooks' })).toBe('Invalid configuration: ORDER_EVENTS_SECRET is required when ORDER_EVENTS_URL is set');
    expect(problem({ ORDER_EVENTS_URL: 'https://shop.example/hooks,ftp://x', ORDER_EVENTS_SECRET: SECRET })).toMatch(/^Invalid configuration: ORDER_EVENTS_URL must start with http:\/\/ or https:\/\//);
    expect(problem({ ORDER_EVENTS_URL: 'https://shop.example/hooks', ORDER_EVENTS_SECRET: 'whsec_not base64!' })).toMatch(/^Invalid configuration: ORDER_EVENTS_SECRET must be whsec_/);
    expect(problem({ ORDER_EVENTS_URL: 'https://shop.example/hooks', ORDER_EVENTS_SECRET: 'whsec_c2hvcnQ=' })).toMatch(/^Invalid configuration: ORDER_EVENTS_SECRET must be whsec_/);
    expect(problem({ ORDER_EVENTS_RETRY_BASE_MS: 'soon' })).toMatch(/^Invalid configuration: ORDER_EVENTS_RETRY_BASE_MS must be a whole number/);
  });
});
