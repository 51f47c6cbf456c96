import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import Redis from 'ioredis';
import { Pool } from 'pg';

/**
 * The raw floor for webhook ingest: what the ack path cannot do without.
 * node:http, Stripe's signature check (HMAC-SHA256, constant-time compare,
 * timestamp tolerance), one INSERT … ON CONFLICT DO NOTHING into the same
 * webhook_events table Settle uses, one LPUSH to Redis, then 200.
 * No framework, no validation beyond that, no logging, no metrics.
 */

const env = process.env;
const secret = env.WEBHOOK_SECRET as string;
const toleranceS = 300;
const queueKey = env.QUEUE_KEY ?? 'bench-floor';
const pool = new Pool({ connectionString: env.DATABASE_URL, max: Number(env.POOL_SIZE ?? 20) });
const redis = new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
const MAX_BODY = 256 * 1024;
const ACK = Buffer.from('{"received":true}');

const INSERT_SQL = `INSERT INTO webhook_events (id, type, payload, event_created, source, status, received_at)
  VALUES ($1, $2, $3, $4, 'webhook', 'received', now()) ON CONFLICT (id) DO NOTHING`;

function verified(raw: Buffer, header: string | undefined): boolean {
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
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > toleranceS) return false;
  const expected = createHmac('sha256', secret).update(`${timestamp}.`).update(raw).digest();
  return candidates.some((c) => timingSafeEqual(c, expected));
}

function answer(res: http.ServerResponse, status: number, body: Buffer | string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, raw: Buffer): Promise<void> {
  if (req.method !== 'POST' || req.url !== '/webhooks/stripe') return answer(res, 404, '{"message":"not found"}');
  if (!verified(raw, req.headers['stripe-signature'] as string | undefined)) return answer(res, 400, '{"message":"bad signature"}');
  let event: { id?: unknown; type?: unknown; created?: unknown };
  try {
    event = JSON.parse(raw.toString('utf8'));
  } catch {
    return answer(res, 400, '{"message":"not JSON"}');
  }
  if (typeof event.id !== 'string' || typeof event.type !== 'string' || typeof event.created !== 'number') return answer(res, 400, '{"message":"not an event"}');
  try {
    await pool.query(INSERT_SQL, [event.id, event.type, raw.toString('utf8'), event.created]);
    await redis.lpush(queueKey, event.id);
  } catch {
    return answer(res, 503, '{"message":"not stored"}');
  }
  answer(res, 200, ACK);
}

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

server.listen(Number(env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`floor listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});

process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void Promise.allSettled([pool.end(), redis.quit()]).then(() => process.exit(0));
});
