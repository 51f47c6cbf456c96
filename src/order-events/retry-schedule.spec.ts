import { nextAttemptAt } from './retry-schedule';

const HOUR = 3600_000;

describe('nextAttemptAt', () => {
  const start = new Date('2026-11-30T00:00:00.000Z');

  it('doubles from the base, with the jitter between half and all of the delay', () => {
    expect(nextAttemptAt(1, start, start, 1000, 72 * HOUR, () => 0)?.getTime()).toBe(start.getTime() + 500);
    expect(nextAttemptAt(1, start, start, 1000, 72 * HOUR, () => 1)?.getTime()).toBe(start.getTime() + 1000);
    expect(nextAttemptAt(4, start, start, 1000, 72 * HOUR, () => 1)?.getTime()).toBe(start.getTime() + 8000);
  });

  it('caps the delay at an hour for a one-second base', () => {
    expect(nextAttemptAt(30, start, start, 1000, 72 * HOUR, () => 1)?.getTime()).toBe(start.getTime() + HOUR);
  });

  it('gives up once the next try would fall past the window', () => {
    const late = new Date(start.getTime() + 72 * HOUR - 10);
    expect(nextAttemptAt(50, late, start, 1000, 72 * HOUR, () => 1)).toBeNull();
    expect(nextAttemptAt(1, new Date(start.getTime() + 71 * HOUR), start, 1000, 72 * HOUR, () => 1)).not.toBeNull();
  });

  it('keeps retrying for 72 hours with a one-second base: about 80 attempts, none after the window', () => {
    let now = start;
    let attempts = 0;
    for (;;) {
      attempts++;
      const next = nextAttemptAt(attempts, now, start, 1000, 72 * HOUR, () => 1);
      if (!next) break;
      now = next;
    }
    expect(now.getTime() - start.getTime()).toBeGreaterThan(71 * HOUR);
    expect(now.getTime() - start.getTime()).toBeLessThanOrEqual(72 * HOUR);
    expect(attempts).toBeGreaterThan(70);
    expect(attempts).toBeLessThan(90);
  });
});
