import { StripeApiError } from './errors';

interface Entry {
  /** When the key was first used (ms); Stripe forgets keys 24 hours after that. */
  createdAt: number;
  fingerprint: string;
  done: boolean;
  status: number;
  body: string;
}

/**
 * Stripe's Idempotency-Key rules: the same key with the same parameters gets
 * the saved answer; other parameters get a 400 `idempotency_error`; a request
 * while the first is still running gets a 409 `idempotency_key_in_use`.
 */
export class IdempotencyStore {
  private readonly entries = new Map<string, Entry>();

  /**
   * Returns a saved answer to replay, or undefined after reserving the key for
   * this request. A key first used before `notBefore` (ms) has expired and
   * counts as new, as at Stripe after 24 hours.
   */
  begin(scope: string, key: string, fingerprint: string, notBefore = -Infinity): { status: number; body: string } | undefined {
    const id = `${scope}\u0000${key}`;
    const entry = this.entries.get(id);
    if (!entry || entry.createdAt < notBefore) {
      // Deleted first so the Map stays in first-use order, which prune() relies on.
      this.entries.delete(id);
      this.entries.set(id, { createdAt: Date.now(), fingerprint, done: false, status: 0, body: '' });
      return undefined;
    }
    if (entry.fingerprint !== fingerprint) {
      throw new StripeApiError(
        400,
        'idempotency_error',
        `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
      );
    }
    if (!entry.done) {
      throw new StripeApiError(409, 'invalid_request_error', 'There is currently another in-progress request using this Idempotency Key. Please try again later.', {
        code: 'idempotency_key_in_use',
      });
    }
    return { status: entry.status, body: entry.body };
  }

  /**
   * Saves the answer once the request ran. Like Stripe, answers from requests
   * that never started executing (validation errors, server errors) are not
   * saved, so the key can be retried.
   */
  finish(scope: string, key: string, status: number, body: string, executed: boolean): void {
    const id = `${scope}\u0000${key}`;
    const entry = this.entries.get(id);
    if (!entry) return;
    if (!executed || status >= 500) {
      this.entries.delete(id);
      return;
    }
    entry.done = true;
    entry.status = status;
    entry.body = body;
  }

  /** Forgets keys first used before `notBefore` (ms); returns how many. */
  prune(notBefore: number): number {
    let removed = 0;
    // Insertion order is first-use order, so the expired keys are at the front.
    for (const [id, entry] of this.entries) {
      if (entry.createdAt >= notBefore) break;
      this.entries.delete(id);
      removed += 1;
    }
    return removed;
  }

  get size(): number {
    return this.entries.size;
  }
}
