import { DEFAULT_MOCK_PSP_PORT, DEFAULT_MOCK_WEBHOOK_SECRET, MockPspOptions } from './mock-psp-options';

function number(env: Record<string, string | undefined>, name: string, min: number, max: number): number | undefined {
  const text = env[name];
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new Error(`${name} must be a number from ${min} to ${max}, got "${text}"`);
  }
  return value;
}

/**
 * The mock's settings from the environment (MOCK_PSP_*), for `npm run mock-psp`
 * and `npm start`. A bad value stops start-up with one line naming it.
 */
export function mockPspOptionsFromEnv(env: Record<string, string | undefined>): MockPspOptions {
  const secret = env.MOCK_PSP_WEBHOOK_SECRET || DEFAULT_MOCK_WEBHOOK_SECRET;
  if (!secret.startsWith('whsec_')) throw new Error(`MOCK_PSP_WEBHOOK_SECRET must start with whsec_, got "${secret.slice(0, 10)}…"`);
  const forwardTo = env.MOCK_PSP_FORWARD_TO || undefined;
  if (forwardTo) {
    try {
      new URL(forwardTo);
    } catch {
      throw new Error(`MOCK_PSP_FORWARD_TO must be a URL such as http://127.0.0.1:3000/webhooks/stripe, got "${forwardTo}"`);
    }
  }
  let delayMs: [number, number] | undefined;
  if (env.MOCK_PSP_DELAY_MS) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(env.MOCK_PSP_DELAY_MS.trim());
    if (!match) throw new Error(`MOCK_PSP_DELAY_MS must be "min-max" milliseconds (or one number), got "${env.MOCK_PSP_DELAY_MS}"`);
    const min = Number(match[1]);
    const max = match[2] === undefined ? min : Number(match[2]);
    if (max < min) throw new Error(`MOCK_PSP_DELAY_MS: max ${max} is below min ${min}`);
    delayMs = [min, max];
  }
  return {
    port: number(env, 'MOCK_PSP_PORT', 0, 65535) ?? DEFAULT_MOCK_PSP_PORT,
    host: env.MOCK_PSP_HOST || undefined,
    webhookSecret: secret,
    forwardTo,
    faults: {
      dropRate: number(env, 'MOCK_PSP_DROP_RATE', 0, 1),
      duplicateRate: number(env, 'MOCK_PSP_DUPLICATE_RATE', 0, 1),
      reorderWindow: number(env, 'MOCK_PSP_REORDER_WINDOW', 0, 1000),
      delayMs,
    },
    seed: number(env, 'MOCK_PSP_SEED', 0, 2 ** 32 - 1),
    timeScale: number(env, 'MOCK_PSP_TIME_SCALE', 0, 1000),
  };
}
