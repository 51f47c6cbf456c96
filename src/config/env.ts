import { AppConfig, AppRole, OrderEventsConfig } from './app-config';
import { parseTrustProxy } from './trust-proxy';
import { expandAllowlist } from './ip-allowlist';

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
    // Not echoed: a connection string that does not parse may still hold a password.
    throw new ConfigError(name, 'must be a URL (its value is not shown: it may hold a password)');
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must start with ${protocols.map((p) => `${p}//`).join(' or ')}, got "${withoutPassword(parsed)}"`);
  }
  return raw;
}

/** Runs a parser that throws a plain Error, reporting it as a ConfigError naming the variable. */
function checked<T>(name: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new ConfigError(name, (err as Error).message);
  }
}

/** The URL as it may be printed: user kept, password replaced. */
export function withoutPassword(url: URL): string {
  if (!url.password) return url.toString();
  const shown = new URL(url.toString());
  shown.password = '***';
  return shown.toString();
}

/**
 * Removes every password of the connection strings (and the other secrets) in
 * `config` from `text`, for messages printed when a connection fails: drivers
 * may quote the URL they were given.
 */
export function redactSecrets(text: string, config: Pick<AppConfig, 'databaseUrl' | 'redisUrl' | 'adminApiKey' | 'stripe'>): string {
  const secrets = [config.adminApiKey, config.stripe.secretKey, ...config.stripe.webhookSecrets];
  for (const raw of [config.databaseUrl, config.redisUrl]) {
    try {
      const password = new URL(raw).password;
      if (password) secrets.push(password, decodeURIComponent(password));
    } catch {
      // loadConfig already refused a URL that does not parse.
    }
  }
  let redacted = text;
  for (const secret of secrets.filter((s) => s.length >= 3)) redacted = redacted.split(secret).join('***');
  return redacted;
}

function hostAddress(env: Env): string {
  const host = read(env, 'HOST') ?? '0.0.0.0';
  if (!/^[\w.:-]+$/.test(host)) throw new ConfigError('HOST', `must be an address such as 127.0.0.1 or 0.0.0.0, got "${host}"`);
  return host;
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
  const apiUrl = url(env, 'STRIPE_API_URL', ['http:', 'https:']);
  if (secretKey.startsWith('sk_live_') && apiUrl?.startsWith('http:')) {
    throw new ConfigError('STRIPE_API_URL', 'must be https:// with an sk_live_ key (a live key is never sent in clear text)');
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
    // At least 2: the reconciler holds one connection for a pass while the pass uses another.
    databasePoolSize: integer(env, 'DATABASE_POOL_SIZE', 20, 2, 500),
    redisUrl: url(env, 'REDIS_URL', ['redis:', 'rediss:']) ?? 'redis://127.0.0.1:6379',
    queuePrefix,
    stripe: {
      secretKey,
      webhookSecrets,
      apiUrl,
    },
    // 0 would switch the SDK's timestamp check off entirely, so it is refused.
    webhookToleranceSeconds: integer(env, 'WEBHOOK_TOLERANCE_SECONDS', 300, 1, 86400),
    reconcileIntervalMs: integer(env, 'RECONCILE_INTERVAL_MS', 60000, 100),
    reconcileStaleAfterMs: integer(env, 'RECONCILE_STALE_AFTER_MS', 300000, 0),
    captureMethod: captureMethod(env),
    orderPaymentTimeoutMs: minutes(env, 'ORDER_PAYMENT_TIMEOUT_MINUTES', 1440),
    adminApiKey,
    logLevel,
    rateLimitPerMinute: integer(env, 'RATE_LIMIT_PER_MINUTE', 0, 0),
    metricsToken: metricsToken(env),
    readyMaxBacklog: integer(env, 'READY_MAX_BACKLOG', 10000, 0),
    trustProxy: checked('TRUST_PROXY', () => parseTrustProxy(read(env, 'TRUST_PROXY'))),
    webhookAllowedIps: checked('WEBHOOK_ALLOWED_IPS', () => {
      const raw = read(env, 'WEBHOOK_ALLOWED_IPS');
      return raw === undefined ? undefined : expandAllowlist(raw);
    }),
    webhookRefusedPerMinute: integer(env, 'WEBHOOK_REFUSED_PER_MINUTE', 60, 0),
    host: hostAddress(env),
    shutdownDrainMs: integer(env, 'SHUTDOWN_DRAIN_MS', 5000, 0, 600000),
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 20000, 100, 600000),
    orderEvents: orderEventsConfig(env),
    // Off unless asked for: `npm start` (the launcher) asks, a deployment does not.
    demoStorefront: flag(env, 'DEMO_STOREFRONT', false),
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

/** `true` or `false`, nothing else: a typo (`yes`, `1`) stops the process rather than silently meaning one of them. */
function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (raw !== 'true' && raw !== 'false') throw new ConfigError(name, `must be true or false, got "${raw}"`);
  return raw === 'true';
}

function captureMethod(env: Env): 'automatic' | 'manual' {
  const raw = read(env, 'CAPTURE_METHOD') ?? 'automatic';
  if (raw !== 'automatic' && raw !== 'manual') throw new ConfigError('CAPTURE_METHOD', `must be automatic or manual, got "${raw}"`);
  return raw;
}

/** A positive number of minutes (fractions allowed, e.g. 0.1 = 6 s), as milliseconds. */
function minutes(env: Env, name: string, fallback: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback * 60_000;
  if (!/^\d+(\.\d+)?$/.test(raw) || Number(raw) <= 0) throw new ConfigError(name, `must be a positive number of minutes (e.g. 1440, or 0.1 for 6 s), got "${raw}"`);
  return Math.round(Number(raw) * 60_000);
}

function metricsToken(env: Env): string | undefined {
  const token = read(env, 'METRICS_TOKEN');
  if (token !== undefined && weakness(token)) throw new ConfigError('METRICS_TOKEN', `is weak: ${weakness(token)}`);
  return token;
}

/** Why a key is too easy to guess, or null. */
function weakness(key: string): string | null {
  if (key.length < 16) return 'it must be at least 16 characters';
  if (new Set(key).size < 8) return 'it must mix at least 8 different characters (use e.g. `openssl rand -hex 24`)';
  return null;
}

/** The mock PSP's signing secret, which is in this repository for anyone to read. */
const PUBLIC_MOCK_SECRET = 'whsec_mock_settle_local';

/**
 * Extra checks for a deployment (`npm run start:prod`): secrets anyone can
 * know or guess are refused there, though `npm start` on a laptop may use
 * them. Throws ConfigError naming the variable.
 */
export function refuseWeakSecrets(config: AppConfig): void {
  if (config.stripe.webhookSecrets.includes(PUBLIC_MOCK_SECRET)) {
    throw new ConfigError('STRIPE_WEBHOOK_SECRET', `must not be ${PUBLIC_MOCK_SECRET}: that secret is public (in this repository), so anyone could sign events`);
  }
  const weak = weakness(config.adminApiKey);
  if (weak) throw new ConfigError('ADMIN_API_KEY', `is weak: ${weak}`);
}
