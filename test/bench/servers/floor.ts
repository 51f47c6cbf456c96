import Redis from 'ioredis';
import { Pool } from 'pg';
import { serveRawIngest } from './raw-ingest';

/**
 * The raw floor for webhook ingest: what the ack path cannot do without.
 * node:http and Stripe's signature check (raw-ingest.ts), then one
 * INSERT … ON CONFLICT DO NOTHING into the same webhook_events table Settle
 * uses and one LPUSH to Redis per event, then 200. The reference the
 * bench's targets are ratios of.
 */

const env = process.env;
const queueKey = env.QUEUE_KEY ?? 'bench-floor';
const pool = new Pool({ connectionString: env.DATABASE_URL, max: Number(env.POOL_SIZE ?? 20) });
const redis = new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });

const INSERT_SQL = `INSERT INTO webhook_events (id, type, payload, event_created, source, status, received_at)
  VALUES ($1, $2, $3, $4, 'webhook', 'received', now()) ON CONFLICT (id) DO NOTHING`;

serveRawIngest(
  'floor',
  env.WEBHOOK_SECRET as string,
  async (event, payload) => {
    await pool.query(INSERT_SQL, [event.id, event.type, payload, event.created]);
    await redis.lpush(queueKey, event.id);
  },
  () => Promise.allSettled([pool.end(), redis.quit()]),
);
