import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { AuthFailureThrottle, TOO_MANY_FAILURES_MESSAGE } from './auth-failure-throttle';

/**
 * Express middleware for admin pages served outside Nest's guards (Bull Board,
 * OpenAPI, metrics). Accepts `Authorization: Bearer <key>`, or Basic auth with
 * the key as password so a browser can open the page. `keys` are every key
 * accepted (the admin key, and for /metrics METRICS_TOKEN); wrong keys count
 * towards the client's limit in `throttle`.
 */
export function adminAuthMiddleware(keys: string | string[], throttle?: AuthFailureThrottle) {
  const expected = (Array.isArray(keys) ? keys : [keys]).map(digest);
  return (req: Request, res: Response, next: NextFunction): void => {
    const client = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const wait = throttle?.retryAfterSeconds(client) ?? 0;
    if (wait > 0) {
      res.setHeader('Retry-After', String(wait));
      res.status(429).json({ statusCode: 429, error: 'Too Many Requests', message: TOO_MANY_FAILURES_MESSAGE });
      return;
    }
    const header = req.headers.authorization ?? '';
    let given: string | undefined;
    const bearer = /^Bearer\s+(\S+)$/i.exec(header);
    const basic = /^Basic\s+(\S+)$/i.exec(header);
    if (bearer) given = bearer[1];
    else if (basic) given = Buffer.from(basic[1] as string, 'base64').toString('utf8').split(':').slice(1).join(':');
    if (given !== undefined && matchesAny(given, expected)) return next();
    if (given !== undefined) throttle?.recordFailure(client);
    res.setHeader('WWW-Authenticate', 'Basic realm="Settle admin"');
    res.status(401).json({ statusCode: 401, error: 'Unauthorized', message: 'This route needs Authorization: Bearer <ADMIN_API_KEY>' });
  };
}

/** Compares digests so the comparison takes the same time whatever the length of the guess; checks every key. */
export function matchesAny(given: string, expected: Buffer[]): boolean {
  const guess = digest(given);
  let match = false;
  for (const key of expected) match = timingSafeEqual(guess, key) || match;
  return match;
}

export function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
