/** setTimeout fires at once for delays past 2^31-1 ms (about 24.8 days), so longer waits are chained. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Long waits of the mock, one per id (a capture window, a Checkout Session's
 * expiry): kept apart from its scheduled changes so `MockPsp.idle()` does not
 * wait days for them. The timers never keep the process alive and end with
 * `stop()`; `due` runs when an id's deadline passes.
 */
export class Deadlines {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(private readonly due: (id: string) => void) {}

  /** Waits until `deadline` (epoch ms), replacing any wait for `id`. */
  set(id: string, deadline: number): void {
    this.clear(id);
    if (!this.stopped) this.waitUntil(id, deadline);
  }

  clear(id: string): void {
    const timer = this.timers.get(id);
    if (timer) clearTimeout(timer);
    this.timers.delete(id);
  }

  /** Waits still running. */
  get size(): number {
    return this.timers.size;
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private waitUntil(id: string, deadline: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(id);
      if (this.stopped) return;
      if (Date.now() < deadline) this.waitUntil(id, deadline);
      else this.due(id);
    }, Math.min(Math.max(0, deadline - Date.now()), MAX_TIMER_MS));
    timer.unref();
    this.timers.set(id, timer);
  }
}
