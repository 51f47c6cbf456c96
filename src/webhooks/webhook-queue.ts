import type { JobOptions, QueueOptions } from 'bull';

/**
 * The Bull queue every accepted PSP event goes through. One job carries the
 * rows of one or more consecutive intake INSERTs (job id in the rows' job_id), or one event
 * (job id = event id: the reconciler's finds, replays, and jobs of earlier versions).
 */
export const WEBHOOK_QUEUE = 'webhook-events';

/** What a job carries: only inbox row ids; payloads are read from the rows under their locks. */
export type WebhookJob = { ids: string[] } | { id: string };

/** The events a job carries. */
export function eventIdsOf(job: WebhookJob): string[] {
  return 'ids' in job ? job.ids : [job.id];
}

/**
 * Retries with exponential backoff (1, 2, 4, 8 s); a retry applies only what
 * is still unapplied, and after the last attempt the rows that still fail are
 * marked dead. Completed jobs are dropped: the inbox is the record, and a
 * re-added job for processed events is a harmless no-op.
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
