/** The typed configuration every module reads; built once from the environment by loadConfig. */
export type AppRole = 'all' | 'api' | 'worker';

export interface AppConfig {
  port: number;
  role: AppRole;
  databaseUrl: string;
  /** Connections in the TypeORM pool; the embedded PGlite server is sized from it. */
  databasePoolSize: number;
  redisUrl: string;
  /** Prefix of every Bull key, so several deployments (or test suites) can share one Redis. */
  queuePrefix: string;
  stripe: {
    secretKey: string;
    /** Every accepted signing secret; more than one while a secret is being rotated. */
    webhookSecrets: string[];
    /** Base URL of a Stripe-compatible API; undefined means Stripe's own. */
    apiUrl?: string;
  };
  webhookToleranceSeconds: number;
  reconcileIntervalMs: number;
  reconcileStaleAfterMs: number;
  adminApiKey: string;
  /** pino level: fatal, error, warn, info, debug, trace or silent. */
  logLevel: string;
  /** Requests a minute one client address may make to the public order routes. */
  rateLimitPerMinute: number;
  /** /health/ready fails while more webhook jobs than this wait in the queue. */
  readyMaxBacklog: number;
  /** Outgoing order events (Standard Webhooks); no endpoints: events are kept (live streams read them) but not posted. */
  orderEvents: OrderEventsConfig;
}

export interface OrderEventsConfig {
  endpoints: string[];
  /** `whsec_` + base64; set whenever endpoints are. */
  secret?: string;
  /** First retry delay; each further one doubles (with jitter), up to 3600 times this. */
  retryBaseMs: number;
  /** How long a delivery is retried before it is `failed` (72 hours). */
  giveUpAfterMs: number;
  /** An endpoint that has not answered within this is a failed attempt. */
  timeoutMs: number;
  /** How often an idle GET /orders/:id/events stream gets a heartbeat comment. */
  streamHeartbeatMs: number;
}
