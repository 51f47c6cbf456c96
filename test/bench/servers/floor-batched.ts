import Redis from 'ioredis';
import { Pool } from 'pg';
import { EventHead, serveRawIngest } from './raw-ingest';

/**
 * The raw floor with group commit, the trick Settle's inbox uses, so a
 * Settle that beats the plain floor can be told apart from one that merely
 * batches: events that arrive while one INSERT runs wait and go together in
 * the next multi-row INSERT (unnest arrays, ON CONFLICT DO NOTHING), with no
 * timer, so a lone event is written at once. After its INSERT commits, a
 * batch goes to Redis in one MULTI (an LPUSH per event, as the plain floor
 * pushes), without holding up the next INSERT; each request is answered once
 * its own batch is in Redis. Same signature check and HTTP as floor.ts.
 */

const env = process.env;
const queueKey = env.QUEUE_KEY ?? 'bench-floor-batched';
const pool = new Pool({ connectionString: env.DATABASE_URL, max: Number(env.POOL_SIZE ?? 20) });
const redis = new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
/** Most events in one INSERT (Settle's inbox caps its batches the same). */
const MAX_BATCH = 256;

const INSERT_SQL = `INSERT INTO webhook_events (id, type, payload, event_created, source, status, received_at)
  SELECT id, type, payload, created, 'webhook', 'received', now()
    FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS e(id, type, payload, created)
  ON CONFLICT (id) DO NOTHING`;

interface Waiting {
  head: EventHead;
  payload: string;
  done(err?: Error): void;
}

const waiting: Waiting[] = [];
let writing = false;

function store(head: EventHead, payload: string): Promise<void> {
  return new Promise((resolve, reject) => {
    waiting.push({ head, payload, done: (err) => (err ? reject(err) : resolve()) });
    if (!writing) void writeBatches();
  });
}

async function writeBatches(): Promise<void> {
  writing = true;
  try {
    while (waiting.length > 0) {
      const batch = waiting.splice(0, MAX_BATCH);
      try {
        await pool.query(INSERT_SQL, [batch.map((w) => w.head.id), batch.map((w) => w.head.type), batch.map((w) => w.payload), batch.map((w) => w.head.created)]);
      } catch (err) {
        for (const w of batch) w.done(err as Error);
        continue;
      }
      void push(batch);
    }
  } finally {
    writing = false;
  }
}

async function push(batch: Waiting[]): Promise<void> {
  const multi = redis.multi();
  for (const w of batch) multi.lpush(queueKey, w.head.id);
  try {
    const replies = await multi.exec();
    const failed = replies === null ? new Error('MULTI aborted') : replies.find(([err]) => err)?.[0];
    for (const w of batch) w.done(failed ?? undefined);
  } catch (err) {
    for (const w of batch) w.done(err as Error);
  }
}

serveRawIngest('floor-batched', env.WEBHOOK_SECRET as string, store, () => Promise.allSettled([pool.end(), redis.quit()]));
