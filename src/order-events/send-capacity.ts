import { performance } from 'node:perf_hooks';
import type { EventLoopUtilization } from 'node:perf_hooks';

/** Sends in flight at once per process (different orders; one order's line is never in flight twice). */
export const MAX_IN_FLIGHT = 64;
/** Sends in flight while the process is busy (see `isBusy` in OrderEventSender): order events keep going, payments keep the CPU. */
export const MAX_IN_FLIGHT_BUSY = 16;
/**
 * While busy, claims come at most this often (so at most MAX_IN_FLIGHT_BUSY
 * sends each, ~64 a second). Every claim and every record of answers is a
 * statement: with four sends in flight and a claim whenever one came back, a
 * flood saw ~40 claims and ~30 records a second for ~120 sends, which cost
 * its settle rate more than the sends did.
 */
export const BUSY_CLAIM_INTERVAL_MS = 250;
/** Event loop utilization (0-1, over the last sample) from which the process counts as saturated. */
export const BUSY_UTILIZATION = 0.9;
const SAMPLE_MS = 200;

/** How many sends may be in flight. */
export function sendCapacity(busy: boolean): number {
  return busy ? MAX_IN_FLIGHT_BUSY : MAX_IN_FLIGHT;
}

/** Milliseconds to wait before the next claim, the last one made at `lastClaimAt`. */
export function claimDelay(busy: boolean, lastClaimAt: number, now: number): number {
  return busy ? Math.max(0, lastClaimAt + BUSY_CLAIM_INTERVAL_MS - now) : 0;
}

/** Whether an event loop this busy is saturated. */
export function isSaturated(utilization: number): boolean {
  return utilization >= BUSY_UTILIZATION;
}

/**
 * The process's event loop utilization over the last SAMPLE_MS. The sender
 * shares its event loop with the webhook intake and the applier (an `all`
 * process) or the applier (a `worker`); posting an event costs about as much
 * CPU as applying one, so while the loop is saturated the sender keeps only a
 * few sends going, claimed a few times a second, and catches up when the load
 * drops, rather than slowing down the payments it reports on.
 */
export class EventLoopLoad {
  private last: EventLoopUtilization = performance.eventLoopUtilization();
  private current = 0;
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.timer = setInterval(() => {
      const now = performance.eventLoopUtilization();
      this.current = performance.eventLoopUtilization(now, this.last).utilization;
      this.last = now;
    }, SAMPLE_MS);
    this.timer.unref();
  }

  get utilization(): number {
    return this.current;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
