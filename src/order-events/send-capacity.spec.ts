import { BUSY_CLAIM_INTERVAL_MS, BUSY_UTILIZATION, EventLoopLoad, MAX_IN_FLIGHT, MAX_IN_FLIGHT_BUSY, claimDelay, isSaturated, sendCapacity } from './send-capacity';

describe('sendCapacity and claimDelay', () => {
  it('keep every send slot and claim at once while the process has room; a few slots (never none), claimed at intervals, while it is busy', () => {
    expect(sendCapacity(false)).toBe(MAX_IN_FLIGHT);
    expect(sendCapacity(true)).toBe(MAX_IN_FLIGHT_BUSY);
    expect(MAX_IN_FLIGHT_BUSY).toBeGreaterThan(0);
    expect(MAX_IN_FLIGHT_BUSY).toBeLessThan(MAX_IN_FLIGHT);
    expect(claimDelay(false, 1000, 1001)).toBe(0);
    expect(claimDelay(true, 1000, 1001)).toBe(BUSY_CLAIM_INTERVAL_MS - 1);
    expect(claimDelay(true, 1000, 1000 + BUSY_CLAIM_INTERVAL_MS)).toBe(0);
    expect(claimDelay(true, 0, 1_000_000)).toBe(0);
  });

  it('counts an event loop as saturated from BUSY_UTILIZATION', () => {
    expect(isSaturated(0)).toBe(false);
    expect(isSaturated(BUSY_UTILIZATION - 0.01)).toBe(false);
    expect(isSaturated(BUSY_UTILIZATION)).toBe(true);
    expect(isSaturated(1)).toBe(true);
  });
});

describe('EventLoopLoad', () => {
  it('reads a loop kept busy as saturated, and an idle one as not', async () => {
    const load = new EventLoopLoad();
    try {
      const busyUntil = Date.now() + 700;
      while (Date.now() < busyUntil) {
        // Synchronous work in slices, so the sampling timer still runs between them.
        const slice = Date.now() + 50;
        while (Date.now() < slice);
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(load.utilization).toBeGreaterThanOrEqual(BUSY_UTILIZATION);
      // Idle: a later sample reads it so (each sample its own window: one averaging since it started would
      // take 7 s to fall below 0.1). Polled, not read once after a fixed wait: on a starved machine two
      // samples can run back to back when the process is scheduled again, and that window reads 1.
      let idle = false;
      for (const until = Date.now() + 3000; !idle && Date.now() < until; ) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        idle = load.utilization < 0.1;
      }
      expect(idle).toBe(true);
    } finally {
      load.stop();
    }
  });
});
