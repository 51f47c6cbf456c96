import type { Job, JobStatus, Queue } from 'bull';
import { WebhookJob, eventIdsOf } from '../../src/webhooks/webhook-queue';

/** The events carried by the webhook queue's jobs in these states (a job carries an intake batch, or one event). */
export async function eventsInJobs(queue: Queue, states: JobStatus[]): Promise<string[]> {
  const jobs = (await queue.getJobs(states)) as Array<Job<WebhookJob> | null>;
  return jobs.flatMap((job) => (job ? eventIdsOf(job.data) : []));
}
