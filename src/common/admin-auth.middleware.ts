import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

/**
 * Express middleware for admin pages served outside Nest's guards (Bull Board).
 * Accepts `Authorization: Bearer <key>`, or Basic auth with the key as password
 * so a browser can open the page.
 */
export function adminAuthMiddleware(adminApiKey: string) {
  const expected = digest(adminApiKey);
  return (req: Request, res: Response, next: NextFunction): void => {
    const header = req.headers.authorization ?? '';
    let given: string | undefined;
    const bearer = /^Bearer\s+(\S+)$/i.exec(header);
    const basic = /^Basic\s+(\S+)$/i.exec(header);
    if (bearer) given = bearer[1];
    else if (basic) given = Buffer.from(basic[1] as string, 'base64').toString('utf8').split(':').slice(1).join(':');
    if (given !== undefined && timingSafeEqual(digest(given), expected)) return next();
    res.setHeader('WWW-Authenticate', 'Basic realm="Settle admin"');
    res.status(401).json({ statusCode: 401, error: 'Unauthorized', message: 'This route needs Authorization: Bearer <ADMIN_API_KEY>' });
  };
}

export function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
