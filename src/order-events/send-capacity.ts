import { performance } from 'node:perf_hooks';
import type { EventLoopUtilization } from 'node:perf_hooks';

/** Sends in flight at once per process (different orders; one order's line is never in flight twice). */
export const MAX_IN_FLIGHT = 64;
/** Sends in flight while the event loop is saturated: order events keep going, the PSP's intake keeps the CPU. */
export const MAX_IN_FLIGHT_BUSY = 4;
/** Event loop utilization (0-1, over the last sample) from which the process counts as saturated. */
export const BUSY_UTILIZATION = 0.9;
const SAMPLE_MS = 200;

/** How many sends may be in flight, for an event loop this busy. */
export function sendCapacity(utilization: number): number {
  return utilization >= BUSY_UTILIZATION ? MAX_IN_FLIGHT_BUSY : MAX_IN_FLIGHT;
}

/**
 * The process's event loop utilization over the last SAMPLE_MS. The sender
 * shares its event loop with the webhook intake and the applier (an `all`
 * process) or the applier (a `worker`); posting an event costs about as much
 * CPU as applying one, so while the loop is saturated the sender keeps only a
 * few sends going and catches up when the load drops, rather than slowing
 * down the payments it reports on.
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
