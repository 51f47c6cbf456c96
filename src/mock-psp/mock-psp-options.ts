import type { DeliveryFaults } from './webhook-delivery';

export const DEFAULT_MOCK_PSP_PORT = 12111;
export const DEFAULT_MOCK_WEBHOOK_SECRET = 'whsec_mock_settle_local';

export interface MockPspOptions {
  /** 0 picks a free port; default 12111. */
  port?: number;
  host?: string;
  webhookSecret?: string;
  /** Where to POST signed events; unset delivers nothing. */
  forwardTo?: string;
  faults?: DeliveryFaults;
  /** Seeds the fault generator so a run can be repeated exactly. */
  seed?: number;
  /**
   * Multiplies the mock's own waits (webhook retry backoff, SEPA settlement,
   * dispute opening, the 7-day capture window, 24-hour idempotency keys,
   * 30 days of events): 1 is real time, tests use 0.01.
   */
  timeScale?: number;
  maxDeliveryAttempts?: number;
  /** Holds every API request this long before answering, so concurrent requests really overlap (tests of 409s). */
  latencyMs?: number;
}
