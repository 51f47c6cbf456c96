import { json } from 'express';
import type { IncomingMessage } from 'node:http';
import type { NestExpressApplication } from '@nestjs/platform-express';

/**
 * Largest body of POST /orders (and the other /orders routes). The largest
 * valid order, 100 lines with 64-character SKUs and 200-character names in a
 * non-Latin script, is well under it; the webhook route has its own reader
 * and limit (MAX_BODY_BYTES).
 */
export const ORDERS_MAX_BODY_BYTES = 128 * 1024;

/** Deepest nesting of arrays and objects a JSON body may have: an order needs 3. */
export const MAX_JSON_DEPTH = 32;

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * True when the JSON text nests arrays/objects deeper than `max`. One pass over
 * the bytes, skipping strings, before anything parses or walks the value, so a
 * body of 100,000 `[` never reaches a recursive validator (a stack overflow, a 500).
 */
export function jsonNestsDeeperThan(body: Buffer, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const byte = body[i];
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (++depth > max) return true;
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

/** body-parser's verify hook: an error with a status is answered with that status (see HttpExceptionFilter). */
function refuseDeepJson(_req: IncomingMessage, _res: unknown, body: Buffer): void {
  if (jsonNestsDeeperThan(body, MAX_JSON_DEPTH)) {
    throw Object.assign(new Error(`Request body nests arrays or objects deeper than ${MAX_JSON_DEPTH} levels`), { status: 400 });
  }
}

/**
 * The app's JSON parsers: a small limit for /orders (public, and the route an
 * attacker can reach without a key), `limit` elsewhere, nesting depth bounded
 * everywhere. Registered before Nest's own, which it then leaves out.
 */
export function useJsonBodyParsers(app: NestExpressApplication, limit: number): void {
  app.use('/orders', json({ limit: ORDERS_MAX_BODY_BYTES, verify: refuseDeepJson }));
  app.use(json({ limit, verify: refuseDeepJson }));
}
