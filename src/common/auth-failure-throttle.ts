import { DynamicModule, Global, Module } from '@nestjs/common';

/** Wrong keys one client may send a minute before every further try is refused with 429. */
export const MAX_AUTH_FAILURES_PER_MINUTE = 10;
const WINDOW_MS = 60_000;
/** Clients remembered at once; the oldest is forgotten first, so memory stays bounded whatever the attacker's address space. */
const MAX_CLIENTS = 10_000;

/**
 * Slows down guessing of the admin key (and the metrics token): after
 * MAX_AUTH_FAILURES_PER_MINUTE wrong keys from one client (req.ip, which
 * follows Express's `trust proxy`) within a minute, that client is refused,
 * right key or not, until the oldest failure is a minute old. Kept in the
 * process's memory: with N API processes a client gets N times the tries.
 */
export class AuthFailureThrottle {
  /** Per client, the times of its most recent failures (at most `limit`), oldest first. */
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly limit = MAX_AUTH_FAILURES_PER_MINUTE, private readonly windowMs = WINDOW_MS) {}

  /** Seconds this client must wait before its key is even looked at; 0 when it may try. */
  retryAfterSeconds(client: string, now = Date.now()): number {
    const times = this.failures.get(client);
    if (!times || times.length < this.limit) return 0;
    const wait = (times[0] as number) + this.windowMs - now;
    if (wait <= 0) return 0;
    return Math.ceil(wait / 1000);
  }

  recordFailure(client: string, now = Date.now()): void {
    const times = (this.failures.get(client) ?? []).filter((t) => t > now - this.windowMs);
    times.push(now);
    if (times.length > this.limit) times.shift();
    this.failures.delete(client);
    this.failures.set(client, times);
    if (this.failures.size > MAX_CLIENTS) this.failures.delete(this.failures.keys().next().value as string);
  }
}

/** Makes one AuthFailureThrottle injectable everywhere (the admin guard), shared with the Express middlewares. */
@Global()
@Module({})
export class AuthFailureThrottleModule {
  static forRoot(throttle: AuthFailureThrottle): DynamicModule {
    return { module: AuthFailureThrottleModule, providers: [{ provide: AuthFailureThrottle, useValue: throttle }], exports: [AuthFailureThrottle] };
  }
}

export const TOO_MANY_FAILURES_MESSAGE = 'Too many wrong keys from this client; retry after the Retry-After header\'s seconds';
