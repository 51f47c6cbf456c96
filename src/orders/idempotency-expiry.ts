/** How long an Idempotency-Key of POST /orders replays its order, as at Stripe; after that it creates a new one. */
export const IDEMPOTENCY_KEY_TTL_MS = 24 * 60 * 60 * 1000;

/** The creation time before which a key has expired. */
export function idempotencyKeyCutoff(now = Date.now()): Date {
  return new Date(now - IDEMPOTENCY_KEY_TTL_MS);
}
