/**
 * Per-sender accounting of webhook deliveries that fail verification, so a
 * sender of junk stops costing an HMAC per request. Pure: the caller passes
 * the clock, and decides what a sender key is.
 *
 * The rule (README, "Webhook gate"):
 * - A sender's first failure opens a window of `windowMs`. After `limit`
 *   failures in it, the sender is throttled until the window ends: its
 *   requests are refused (429) without being verified.
 * - Verified deliveries never count, and are never refused for a sender that
 *   is not throttled.
 * - While throttled, one request every `probeIntervalMs` is still verified
 *   if its signature header is well formed with a fresh timestamp (the
 *   caller checks that). When such a probe verifies, the throttle is lifted:
 *   the sender's valid deliveries all pass again. Its failure count is kept,
 *   so its next failure in the same window throttles it again at once.
 * - At most `maxSenders` senders are remembered; past that the one whose
 *   window opened first is forgotten, so many addresses cannot grow memory.
 */
export class RefusalThrottle {
  private readonly senders = new Map<string, SenderWindow>();

  constructor(
    readonly limit: number,
    private readonly windowMs = 60_000,
    private readonly probeIntervalMs = 1_000,
    private readonly maxSenders = 10_000,
  ) {}

  /**
   * Before a delivery is read. Returns undefined when it is to be verified,
   * or the milliseconds until the sender's window ends when it is to be
   * refused unverified. `probeable` is asked only for a throttled sender.
   */
  check(key: string, now: number, probeable: () => boolean): number | undefined {
    const sender = this.current(key, now);
    if (!sender?.throttled) return undefined;
    if (now >= sender.nextProbeAt && probeable()) {
      sender.nextProbeAt = now + this.probeIntervalMs;
      return undefined;
    }
    return sender.windowEndsAt - now;
  }

  /** A delivery from `key` failed verification. True when this failure throttles the sender for the first time in its window. */
  failed(key: string, now: number): boolean {
    if (this.limit === 0) return false;
    let sender = this.current(key, now);
    if (!sender) {
      this.forgetExpired(now);
      if (this.senders.size >= this.maxSenders) this.senders.delete(this.senders.keys().next().value as string);
      sender = { windowEndsAt: now + this.windowMs, failures: 0, throttled: false, announced: false, nextProbeAt: now };
      this.senders.set(key, sender);
    }
    sender.failures++;
    if (sender.throttled || sender.failures < this.limit) return false;
    sender.throttled = true;
    sender.nextProbeAt = now + this.probeIntervalMs;
    const first = !sender.announced;
    sender.announced = true;
    return first;
  }

  /** A delivery from `key` verified. True when it lifted the sender's throttle. */
  verified(key: string, now: number): boolean {
    const sender = this.current(key, now);
    if (!sender?.throttled) return false;
    sender.throttled = false;
    return true;
  }

  /** Senders remembered now (each holds one open window). */
  get size(): number {
    return this.senders.size;
  }

  isThrottled(key: string, now: number): boolean {
    return this.current(key, now)?.throttled ?? false;
  }

  private current(key: string, now: number): SenderWindow | undefined {
    const sender = this.senders.get(key);
    if (sender && now >= sender.windowEndsAt) {
      this.senders.delete(key);
      return undefined;
    }
    return sender;
  }

  /** Windows all last windowMs and the map keeps insertion order, so the expired ones are at its front. */
  private forgetExpired(now: number): void {
    for (const [key, sender] of this.senders) {
      if (now < sender.windowEndsAt) return;
      this.senders.delete(key);
    }
  }
}

interface SenderWindow {
  windowEndsAt: number;
  failures: number;
  throttled: boolean;
  /** Whether this window's throttling was already reported (logged once per window). */
  announced: boolean;
  nextProbeAt: number;
}
