import { BUSY_UTILIZATION, EventLoopLoad, MAX_IN_FLIGHT, MAX_IN_FLIGHT_BUSY, sendCapacity } from './send-capacity';

describe('sendCapacity', () => {
  it('keeps every send slot while the event loop has room, and a few (never none) once it is saturated', () => {
    expect(sendCapacity(0)).toBe(MAX_IN_FLIGHT);
    expect(sendCapacity(BUSY_UTILIZATION - 0.01)).toBe(MAX_IN_FLIGHT);
    expect(sendCapacity(BUSY_UTILIZATION)).toBe(MAX_IN_FLIGHT_BUSY);
    expect(sendCapacity(1)).toBe(MAX_IN_FLIGHT_BUSY);
    expect(MAX_IN_FLIGHT_BUSY).toBeGreaterThan(0);
    expect(MAX_IN_FLIGHT_BUSY).toBeLessThan(MAX_IN_FLIGHT);
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
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect(load.utilization).toBeLessThan(0.5);
    } finally {
      load.stop();
    }
  });
});
