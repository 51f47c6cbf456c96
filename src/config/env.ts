import { AppConfig, AppRole, OrderEventsConfig } from './app-config';

/** A bad or missing setting; its message is the one line printed before the process stops. */
export class ConfigError extends Error {
  constructor(readonly variable: string, problem: string) {
    super(`Invalid configuration: ${variable} ${problem}`);
  }
}

type Env = Record<string, string | undefined>;

function read(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function required(env: Env, name: string): string {
  const value = read(env, name);
  if (value === undefined) throw new ConfigError(name, 'is required');
  return value;
}

function integer(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = read(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, `must be a URL, got "${raw}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must start with ${protocols.map((p) => `${p}//`).join(' or ')}, got "${raw}"`);
  }
  return raw;
}

/**
 * Validates the whole environment once. Every value the process uses is here;
 * nothing else reads process.env. Throws ConfigError naming the first bad variable.
 */
export function loadConfig(env: Env): AppConfig {
  const role = (read(env, 'APP_ROLE') ?? 'all') as AppRole;
  if (!['all', 'api', 'worker'].includes(role)) {
    throw new ConfigError('APP_ROLE', `must be one of all, api, worker, got "${role}"`);
  }
  const databaseUrl = url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  if (!databaseUrl) throw new ConfigError('DATABASE_URL', 'is required');

  const secretKey = required(env, 'STRIPE_SECRET_KEY');
  if (!/^sk_(test|live)_\S+$/.test(secretKey)) {
    throw new ConfigError('STRIPE_SECRET_KEY', 'must look like sk_test_… (or sk_live_…)');
  }
  const secretsRaw = read(env, 'STRIPE_WEBHOOK_SECRET');
  if (!secretsRaw) throw new ConfigError('STRIPE_WEBHOOK_SECRET', 'is required when STRIPE_SECRET_KEY is set');
  const webhookSecrets = secretsRaw.split(',').map((s) => s.trim()).filter(Boolean);
  const badSecret = webhookSecrets.find((s) => !/^whsec_\S+$/.test(s));
  if (badSecret !== undefined || webhookSecrets.length === 0) {
    throw new ConfigError('STRIPE_WEBHOOK_SECRET', 'must be whsec_… (several may be given, comma-separated, while rotating)');
  }

  const adminApiKey = required(env, 'ADMIN_API_KEY');
  if (adminApiKey.length < 16) throw new ConfigError('ADMIN_API_KEY', 'must be at least 16 characters');

  const queuePrefix = read(env, 'QUEUE_PREFIX') ?? 'settle';
  if (!/^[\w.-]+$/.test(queuePrefix)) throw new ConfigError('QUEUE_PREFIX', 'may hold only letters, digits, ".", "_" and "-"');

  const logLevel = read(env, 'LOG_LEVEL') ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `must be one of fatal, error, warn, info, debug, trace, silent, got "${logLevel}"`);
  }

  return {
    port: integer(env, 'PORT', 3000, 0, 65535),
    role,
    databaseUrl,
    databasePoolSize: integer(env, 'DATABASE_POOL_SIZE', 20, 1, 500),
    redisUrl: url(env, 'REDIS_URL', ['redis:', 'rediss:']) ?? 'redis://127.0.0.1:6379',
    queuePrefix,
    stripe: {
      secretKey,
      webhookSecrets,
      apiUrl: url(env, 'STRIPE_API_URL', ['http:', 'https:']),
    },
    // 0 would switch the SDK's timestamp check off entirely, so it is refused.
    webhookToleranceSeconds: integer(env, 'WEBHOOK_TOLERANCE_SECONDS', 300, 1, 86400),
    reconcileIntervalMs: integer(env, 'RECONCILE_INTERVAL_MS', 60000, 100),
    reconcileStaleAfterMs: integer(env, 'RECONCILE_STALE_AFTER_MS', 300000, 0),
    adminApiKey,
    logLevel,
    rateLimitPerMinute: integer(env, 'RATE_LIMIT_PER_MINUTE', 120, 1),
    readyMaxBacklog: integer(env, 'READY_MAX_BACKLOG', 10000, 0),
    orderEvents: orderEventsConfig(env),
  };
}

/** ORDER_EVENTS_*: endpoints and their signing secret; the retry knobs exist so tests can shrink 72 hours. */
function orderEventsConfig(env: Env): OrderEventsConfig {
  const endpoints = (read(env, 'ORDER_EVENTS_URL') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const endpoint of endpoints) url({ ORDER_EVENTS_URL: endpoint }, 'ORDER_EVENTS_URL', ['http:', 'https:']);
  const secret = read(env, 'ORDER_EVENTS_SECRET');
  if (endpoints.length > 0 && !secret) throw new ConfigError('ORDER_EVENTS_SECRET', 'is required when ORDER_EVENTS_URL is set');
  // Standard Webhooks secrets are whsec_ + base64 of 24 to 64 random bytes.
  if (secret !== undefined && !(/^whsec_[A-Za-z0-9+/]+={0,2}$/.test(secret) && Buffer.from(secret.slice(6), 'base64').length >= 16)) {
    throw new ConfigError('ORDER_EVENTS_SECRET', 'must be whsec_ followed by the base64 of at least 16 random bytes (e.g. whsec_$(openssl rand -base64 32))');
  }
  return {
    endpoints,
    secret,
    retryBaseMs: integer(env, 'ORDER_EVENTS_RETRY_BASE_MS', 1000, 1),
    giveUpAfterMs: integer(env, 'ORDER_EVENTS_GIVE_UP_AFTER_MS', 72 * 3600 * 1000, 1),
    timeoutMs: integer(env, 'ORDER_EVENTS_TIMEOUT_MS', 5000, 100),
    streamHeartbeatMs: integer(env, 'ORDER_EVENTS_HEARTBEAT_MS', 15000, 10),
  };
}
