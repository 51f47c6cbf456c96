import type { TrustProxySetting } from './trust-proxy';

/** The typed configuration every module reads; built once from the environment by loadConfig. */
export type AppRole = 'all' | 'api' | 'worker';

export interface AppConfig {
  port: number;
  role: AppRole;
  databaseUrl: string;
  /** Connections in the TypeORM pool; the embedded PGlite server is sized from it. */
  databasePoolSize: number;
  /**
   * Every connection shares one database session (npm start's embedded PGlite,
   * set by the launcher): statements are not prepared by name there, since a
   * name one connection prepared already exists for the next.
   */
  databaseOneSession?: boolean;
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
  /** CAPTURE_METHOD: how orders that do not say are captured. */
  captureMethod: 'automatic' | 'manual';
  /** ORDER_PAYMENT_TIMEOUT_MINUTES: an order unpaid this long is expired. */
  orderPaymentTimeoutMs: number;
  adminApiKey: string;
  /** pino level: fatal, error, warn, info, debug, trace or silent. */
  logLevel: string;
  /** Requests a minute one client address may make to the public order routes; 0: no limit. */
  rateLimitPerMinute: number;
  /** A second bearer token accepted by GET /metrics (for Prometheus), besides the admin key. */
  metricsToken?: string;
  /** /health/ready fails while more webhook jobs than this wait in the queue. */
  readyMaxBacklog: number;
  /** TRUST_PROXY: which hops' X-Forwarded-For is believed, for every route (Express's `trust proxy` values). */
  trustProxy: TrustProxySetting;
  /** WEBHOOK_ALLOWED_IPS expanded (`stripe` replaced by Stripe's list); undefined: deliveries from anywhere. */
  webhookAllowedIps?: string[];
  /** Deliveries failing verification one client may send a minute before it is answered 429; 0 turns this off. */
  webhookRefusedPerMinute: number;
  /** Address the HTTP server binds (HOST): 0.0.0.0 for start:prod, 127.0.0.1 for npm start. */
  host: string;
  /** After SIGTERM, how long /health/ready fails before the listener closes, so a load balancer stops sending. */
  shutdownDrainMs: number;
  /** After the drain, the hard limit for in-flight requests and jobs; past it the process exits 1 naming what was cut off. */
  shutdownTimeoutMs: number;
  /** Outgoing order events (Standard Webhooks); no endpoints: events are kept (live streams read them) but not posted. */
  orderEvents: OrderEventsConfig;
  /** DEMO_STOREFRONT: serve the demo shop at / and /shop/… (HTTP roles only); `npm start` turns it on. */
  demoStorefront: boolean;
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
