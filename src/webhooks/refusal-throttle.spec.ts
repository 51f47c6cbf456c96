import { RefusalThrottle } from './refusal-throttle';

const yes = () => true;
const no = () => false;

describe('RefusalThrottle', () => {
  it('verifies everything until `limit` failures, then refuses until the window ends', () => {
    const throttle = new RefusalThrottle(3, 60_000, 1_000);
    for (let i = 0; i < 3; i++) {
      expect(throttle.check('a', 1_000, no)).toBeUndefined();
      expect(throttle.failed('a', 1_000)).toBe(i === 2);
    }
    expect(throttle.check('a', 1_500, no)).toBe(59_500);
    expect(throttle.check('a', 60_999, no)).toBe(1);
    expect(throttle.check('a', 61_000, no)).toBeUndefined();
    expect(throttle.size).toBe(0);
  });

  it('keeps senders apart', () => {
    const throttle = new RefusalThrottle(2);
    throttle.failed('a', 0);
    throttle.failed('a', 0);
    expect(throttle.check('a', 10, no)).toBeDefined();
    expect(throttle.check('b', 10, no)).toBeUndefined();
  });

  it('never counts verified deliveries', () => {
    const throttle = new RefusalThrottle(2);
    throttle.failed('a', 0);
    for (let i = 0; i < 100; i++) expect(throttle.verified('a', i)).toBe(false);
    expect(throttle.check('a', 200, no)).toBeUndefined();
    expect(throttle.failed('a', 300)).toBe(true);
  });

  it('lets a throttled sender probe once per interval, only with a plausible signature', () => {
    const throttle = new RefusalThrottle(1, 60_000, 1_000);
    throttle.failed('a', 0);
    expect(throttle.check('a', 500, yes)).toBeDefined(); // not yet: the first probe is a second after throttling
    expect(throttle.check('a', 1_000, no)).toBeDefined(); // due, but the header does not even parse
    expect(throttle.check('a', 1_000, yes)).toBeUndefined(); // the probe
    expect(throttle.check('a', 1_001, yes)).toBeDefined(); // the next one waits its interval
    expect(throttle.check('a', 2_000, yes)).toBeUndefined();
  });

  it('a probe that verifies lifts the throttle; the next failure in the window throttles again at once', () => {
    const throttle = new RefusalThrottle(2, 60_000, 1_000);
    throttle.failed('a', 0);
    expect(throttle.failed('a', 0)).toBe(true);
    expect(throttle.check('a', 1_000, yes)).toBeUndefined();
    expect(throttle.verified('a', 1_000)).toBe(true);
    for (let t = 1_001; t < 1_100; t++) expect(throttle.check('a', t, no)).toBeUndefined();
    // Throttled again, but reported once per window only.
    expect(throttle.failed('a', 1_100)).toBe(false);
    expect(throttle.isThrottled('a', 1_100)).toBe(true);
    expect(throttle.check('a', 1_200, no)).toBe(58_800);
  });

  it('limit 0 never throttles', () => {
    const throttle = new RefusalThrottle(0);
    for (let i = 0; i < 1000; i++) throttle.failed('a', i);
    expect(throttle.check('a', 1000, no)).toBeUndefined();
    expect(throttle.size).toBe(0);
  });

  it('remembers at most maxSenders, forgetting expired windows first, then the oldest', () => {
    const throttle = new RefusalThrottle(1, 60_000, 1_000, 3);
    throttle.failed('old', 0);
    throttle.failed('a', 30_000);
    throttle.failed('b', 30_000);
    // 'old' has expired: it goes, and the new sender fits.
    throttle.failed('c', 61_000);
    expect(throttle.size).toBe(3);
    // Full of live windows: the oldest ('a') is forgotten.
    throttle.failed('d', 62_000);
    expect(throttle.size).toBe(3);
    expect(throttle.isThrottled('a', 62_000)).toBe(false);
    expect(['b', 'c', 'd'].every((k) => throttle.isThrottled(k, 62_000))).toBe(true);
    for (let i = 0; i < 10_000; i++) throttle.failed(`many-${i}`, 63_000);
    expect(throttle.size).toBe(3);
  });
});
