import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { AddressInfo } from 'node:net';

/**
 * What the raw floors share: node:http, the body read with a size cap,
 * Stripe's signature check (HMAC-SHA256, constant-time compare, timestamp
 * tolerance) and the event's id, type and created read from the body. How the
 * event is stored is each floor's own: `store` resolves once it is durable.
 * No framework, no validation beyond that, no logging, no metrics.
 */

export interface EventHead {
  id: string;
  type: string;
  created: number;
}

const TOLERANCE_S = 300;
const MAX_BODY = 256 * 1024;
const ACK = Buffer.from('{"received":true}');

function verified(secret: string, raw: Buffer, header: string | undefined): boolean {
  if (!header) return false;
  let timestamp: string | undefined;
  const candidates: Buffer[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') timestamp = value;
    else if (key === 'v1' && /^[0-9a-f]{64}$/.test(value)) candidates.push(Buffer.from(value, 'hex'));
  }
  if (!timestamp || candidates.length === 0) return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > TOLERANCE_S) return false;
  const expected = createHmac('sha256', secret).update(`${timestamp}.`).update(raw).digest();
  return candidates.some((c) => timingSafeEqual(c, expected));
}

function answer(res: http.ServerResponse, status: number, body: Buffer | string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * Serves POST /webhooks/stripe on PORT (0: any) and prints `<name> listening
 * on http://…`; 200 once `store` resolves, 503 when it rejects. On SIGTERM it
 * closes, runs `close` and exits.
 */
export function serveRawIngest(name: string, secret: string, store: (head: EventHead, payload: string) => Promise<void>, close: () => Promise<unknown>): void {
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse, raw: Buffer): Promise<void> => {
    if (req.method !== 'POST' || req.url !== '/webhooks/stripe') return answer(res, 404, '{"message":"not found"}');
    if (!verified(secret, raw, req.headers['stripe-signature'] as string | undefined)) return answer(res, 400, '{"message":"bad signature"}');
    let event: { id?: unknown; type?: unknown; created?: unknown };
    try {
      event = JSON.parse(raw.toString('utf8'));
    } catch {
      return answer(res, 400, '{"message":"not JSON"}');
    }
    if (typeof event.id !== 'string' || typeof event.type !== 'string' || typeof event.created !== 'number') return answer(res, 400, '{"message":"not an event"}');
    try {
      await store({ id: event.id, type: event.type, created: event.created }, raw.toString('utf8'));
    } catch {
      return answer(res, 503, '{"message":"not stored"}');
    }
    answer(res, 200, ACK);
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        answer(res, 413, '{"message":"too large"}');
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => void handle(req, res, Buffer.concat(chunks)).catch(() => answer(res, 500, '{"message":"error"}')));
  });
  server.keepAliveTimeout = 65_000;

  server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
    console.log(`${name} listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });

  process.on('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
    void close().then(() => process.exit(0));
  });
}
