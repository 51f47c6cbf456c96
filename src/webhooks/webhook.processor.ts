import { Logger } from '@nestjs/common';
import { Process, Processor } from '@nestjs/bull';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Job } from 'bull';
import { DataSource } from 'typeorm';
import { eventBatchSize, eventProcessingSeconds } from '../metrics/metrics';
import { EventOutcome, PaymentApplier } from '../payments/payment-applier';
import { WEBHOOK_QUEUE, WebhookJob } from './webhook-queue';

// Jobs in flight per worker process. They wait in the batcher below, so many in flight means
// bigger batches rather than more open transactions. Under a flood about a third of them are
// in Bull's hands (finishing one, fetching the next) at any moment. Measured by npm run bench
// on 2 cores: at 32 a batch held ~9 events and the flood settled at ~1,000-1,450/s, at 64 ~17
// events and ~1,300-1,960/s (median ~1,700); 96-128 cost more CPU per event than they gained.
const CONCURRENCY = 64;
/** Most events applied in one transaction. */
const MAX_BATCH = 64;
/** Batch transactions at once: one commits while the next is built. */
const BATCHES_IN_FLIGHT = 2;

interface Waiting {
  id: string;
  resolve(outcome: EventOutcome): void;
  reject(err: Error): void;
}

/**
 * Applies queued PSP events; Bull retries a failure with backoff, and the last
 * failure marks the inbox row dead.
 *
 * Group commit: jobs that arrive while a batch is being applied go together
 * in the next transaction (PaymentApplier.applyInboxEvents); events a batch
 * cannot decide alone, and every event of a batch that failed, are applied
 * one by one, so one bad event fails only its own job.
 */
@Processor(WEBHOOK_QUEUE)
export class WebhookProcessor {
  private readonly logger = new Logger(WebhookProcessor.name);
  private waiting: Waiting[] = [];
  private running = 0;

  constructor(private readonly applier: PaymentApplier, @InjectDataSource() private readonly db: DataSource) {}

  @Process({ concurrency: CONCURRENCY })
  async handle(job: Job<WebhookJob>): Promise<string> {
    const eventId = job.data.id;
    const done = eventProcessingSeconds.startTimer();
    try {
      const outcome = await this.apply(eventId);
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

  private apply(id: string): Promise<EventOutcome> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ id, resolve, reject });
      if (this.running < BATCHES_IN_FLIGHT) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running += 1;
    try {
      while (this.waiting.length > 0) await this.applyBatch(this.waiting.splice(0, MAX_BATCH));
    } finally {
      this.running -= 1;
    }
  }

  /** Never throws: every waiting job is settled. */
  private async applyBatch(batch: Waiting[]): Promise<void> {
    let results = new Map<string, EventOutcome>();
    if (batch.length === 1) eventBatchSize.observe(1);
    if (batch.length > 1) {
      try {
        results = await this.applier.applyInboxEvents([...new Set(batch.map((w) => w.id))]);
        eventBatchSize.observe(results.size);
      } catch (err) {
        this.logger.warn({ msg: 'batch failed; applying its events one by one', size: batch.length, error: (err as Error).message });
      }
    }
    await Promise.all(
      batch.map(async (w) => {
        const outcome = results.get(w.id);
        if (outcome !== undefined) return w.resolve(outcome);
        try {
          w.resolve(await this.applier.applyInboxEvent(w.id));
        } catch (err) {
          w.reject(err as Error);
        }
      }),
    );
  }
}
