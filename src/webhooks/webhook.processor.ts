import { Logger } from '@nestjs/common';
import { Process, Processor } from '@nestjs/bull';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Job } from 'bull';
import { DataSource } from 'typeorm';
import { eventProcessingSeconds } from '../metrics/metrics';
import { PaymentApplier } from '../payments/payment-applier';
import { WEBHOOK_QUEUE, WebhookJob } from './webhook-queue';

/** Jobs applied at once per worker process; each holds one order row lock at most. */
// Each job is a short transaction of a few round trips, so the worker mostly waits on PostgreSQL:
// several in flight keep both busy. Bounded well under the pool size, which the API shares.
const CONCURRENCY = 8;

/** Applies queued PSP events; Bull retries a failure with backoff, and the last failure marks the inbox row dead. */
@Processor(WEBHOOK_QUEUE)
export class WebhookProcessor {
  private readonly logger = new Logger(WebhookProcessor.name);

  constructor(private readonly applier: PaymentApplier, @InjectDataSource() private readonly db: DataSource) {}

  @Process({ concurrency: CONCURRENCY })
  async handle(job: Job<WebhookJob>): Promise<string> {
    const eventId = job.data.id;
    const done = eventProcessingSeconds.startTimer();
    try {
      const outcome = await this.applier.applyInboxEvent(eventId);
      done({ outcome });
      return outcome;
    } catch (err) {
      done({ outcome: 'error' });
      const final = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      const message = (err as Error).message ?? String(err);
      this.logger.error({ msg: final ? 'event failed its last attempt: dead' : 'event failed; will retry', eventId, attempt: job.attemptsMade + 1, error: message });
      await this.db
        .query(
          `UPDATE webhook_events SET attempts = attempts + 1, last_error = $2, status = CASE WHEN $3 THEN 'dead' ELSE status END
           WHERE id = $1 AND status NOT IN ('processed', 'ignored')`,
          [eventId, message.slice(0, 2000), final],
        )
        .catch((dbErr: Error) => this.logger.error({ msg: 'could not record the failure', eventId, error: dbErr.message }));
      throw err;
    }
  }
}
