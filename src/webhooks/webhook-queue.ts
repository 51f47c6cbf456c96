import type { JobOptions, QueueOptions } from 'bull';

/** The Bull queue every accepted PSP event goes through; job id = event id. */
export const WEBHOOK_QUEUE = 'webhook-events';

/** What a job carries: only the inbox row's id; the payload is read from the row under its lock. */
export interface WebhookJob {
  id: string;
}

/**
 * Retries with exponential backoff (1, 2, 4, 8 s); after the last attempt the
 * inbox row is marked dead. Completed jobs are dropped: the inbox is the record,
 * and a re-added job id for a processed event is a harmless no-op.
 */
export const WEBHOOK_JOB_OPTIONS: JobOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: true,
  removeOnFail: 1000,
};

/**
 * A job whose worker died (SIGKILL) is taken back after its lock lapses;
 * shorter than Bull's 30 s defaults so a crash delays events by seconds, and
 * safe because applying an event twice is a no-op (inbox row lock + status).
 */
export const WEBHOOK_QUEUE_SETTINGS: QueueOptions['settings'] = {
  lockDuration: 10_000,
  stalledInterval: 5_000,
  maxStalledCount: 5,
};
