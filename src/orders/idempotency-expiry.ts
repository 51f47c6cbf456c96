import { DataSource } from 'typeorm';
import { IdempotencyKey } from './idempotency-key.entity';

/** How long an Idempotency-Key of POST /orders replays its order, as at Stripe; after that it creates a new one. */
export const IDEMPOTENCY_KEY_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * Frees `key` when its row is older than the TTL, so the request that found it
 * taken can create a new order. True when a row was deleted. Runs outside the
 * creating transaction (which has already failed on the key's unique index).
 */
export async function releaseExpiredKey(db: DataSource, key: string, now = Date.now()): Promise<boolean> {
  const result = await db
    .createQueryBuilder()
    .delete()
    .from(IdempotencyKey)
    .where('key = :key AND created_at < :cutoff', { key, cutoff: new Date(now - IDEMPOTENCY_KEY_TTL_MS) })
    .execute();
  return (result.affected ?? 0) > 0;
}
