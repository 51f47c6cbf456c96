import { AuthFailureThrottle } from './auth-failure-throttle';

describe('AuthFailureThrottle', () => {
  it('lets a client fail 10 times a minute, then makes it wait until the oldest failure is a minute old', () => {
    const throttle = new AuthFailureThrottle(10, 60_000);
    const t0 = 1_000_000;
    for (let i = 0; i < 10; i++) {
      expect(throttle.retryAfterSeconds('1.2.3.4', t0 + i)).toBe(0);
      throttle.recordFailure('1.2.3.4', t0 + i);
    }
    expect(throttle.retryAfterSeconds('1.2.3.4', t0 + 10)).toBe(60);
    expect(throttle.retryAfterSeconds('5.6.7.8', t0 + 10)).toBe(0);
    expect(throttle.retryAfterSeconds('1.2.3.4', t0 + 59_000)).toBe(1);
    expect(throttle.retryAfterSeconds('1.2.3.4', t0 + 60_001)).toBe(0);
  });

  it('forgets failures older than the window', () => {
    const throttle = new AuthFailureThrottle(3, 1000);
    throttle.recordFailure('c', 0);
    throttle.recordFailure('c', 10);
    throttle.recordFailure('c', 2000);
    expect(throttle.retryAfterSeconds('c', 2001)).toBe(0);
  });
});
