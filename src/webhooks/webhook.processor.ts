import { Logger } from '@nestjs/common';
import { Process, Processor } from '@nestjs/bull';
import type { Job } from 'bull';
import { ApplyBacklog } from '../common/apply-backlog';
import { Metrics } from '../metrics/metrics';
import { EventOutcome, PaymentApplier } from './payment-applier';
import { InboxRepository } from './webhook-inbox.repository';
import { TransactionTurn } from './transaction-turn';
import { WEBHOOK_QUEUE, WebhookJob, eventIdsOf } from './webhook-queue';

// Jobs in flight per worker process (a job carries one or more intake batches: one event or
// dozens). Their events wait in the batcher below, so many in flight means bigger batches rather
// than more open transactions.
const CONCURRENCY = 64;
/**
 * Most events applied in one transaction. Under load a batch holds what arrived during the
 * previous transaction: ~200 in the bench's flood, where 64 (with two transactions at once)
 * held ~55 and settled 15-28 % fewer events a second in each of four ABBA rounds.
 */
const MAX_BATCH = 512;

interface Waiting {
  id: string;
  resolve(outcome: EventOutcome): void;
  reject(err: Error): void;
}

/**
 * Applies queued PSP events. A job carries the events the intake stored
 * together; Bull retries a job with a failed event with backoff (what was
 * applied meanwhile is skipped), and its last failure marks the events that
 * still fail dead.
 *
 * Group commit: events of jobs that arrive while a batch is applied go
 * together in the next transaction (PaymentApplier.applyEvents, whose path is
 * the same for one event); every event of a batch that failed is applied
 * again alone, so one bad event fails only itself. One applying transaction
 * runs at a time (the turn): a batch is cut when the turn comes free, so
 * batches grow with the load and a transaction's round trips and commit are
 * paid once for all of them; a batch waiting for the PSP between its
 * transactions does not hold the turn.
 */
@Processor(WEBHOOK_QUEUE)
export class WebhookProcessor {
  private readonly logger = new Logger(WebhookProcessor.name);
  private waiting: Waiting[] = [];
  private readonly turn = new TransactionTurn();
  private draining = false;

  constructor(
    private readonly applier: PaymentApplier,
    private readonly inbox: InboxRepository,
    private readonly metrics: Metrics,
    private readonly backlog: ApplyBacklog,
  ) {}

  @Process({ concurrency: CONCURRENCY })
  async handle(job: Job<WebhookJob>): Promise<string> {
    const ids = eventIdsOf(job.data);
    const outcomes = await Promise.all(ids.map((id) => this.applyTimed(id)));
    const failed = ids.flatMap((id, i) => (outcomes[i] instanceof Error ? [{ id, error: outcomes[i] as Error }] : []));
    if (failed.length === 0) return `${ids.length} applied`;
    const final = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    for (const { id, error } of failed) {
      const message = error.message ?? String(error);
      this.logger.error({ msg: final ? 'event failed its last attempt: dead' : 'event failed; will retry', eventId: id, jobId: job.id, attempt: job.attemptsMade + 1, error: message });
      await this.inbox
        .recordFailure(id, message, final)
        .catch((dbErr: Error) => this.logger.error({ msg: 'could not record the failure', eventId: id, error: dbErr.message }));
    }
    throw new Error(`${failed.length} of ${ids.length} events failed; first ${failed[0]?.id}: ${failed[0]?.error.message}`);
  }

  /** One event through the batcher, timed; resolves with its outcome or its Error. */
  private async applyTimed(id: string): Promise<EventOutcome | Error> {
    const done = this.metrics.eventProcessingSeconds.startTimer();
    try {
      const outcome = await this.apply(id);
      done({ outcome });
      return outcome;
    } catch (err) {
      done({ outcome: 'error' });
      return err as Error;
    }
  }

  private apply(id: string): Promise<EventOutcome> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ id, resolve, reject });
      if (!this.draining) void this.drain();
    });
  }

  /** Cuts a batch each time the turn is free; the batch takes the turn before this loop looks again. */
  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.waiting.length > 0) {
        await this.turn.idle();
        const batch = this.waiting.splice(0, MAX_BATCH);
        this.backlog.noteBatch(batch.length);
        void this.applyBatch(batch);
      }
    } finally {
      this.draining = false;
    }
  }

  /** Never throws: every waiting job is settled. */
  private async applyBatch(batch: Waiting[]): Promise<void> {
    const ids = [...new Set(batch.map((w) => w.id))];
    let results: Map<string, EventOutcome | Error> | undefined;
    try {
      results = await this.applier.applyEvents(ids, this.turn);
      this.metrics.eventBatchSize.observe(ids.length);
    } catch (err) {
      if (ids.length > 1) this.logger.warn({ msg: 'batch failed; applying its events one by one', size: ids.length, error: (err as Error).message });
      else results = new Map([[ids[0] as string, err as Error]]);
    }
    await Promise.all(
      batch.map(async (w) => {
        let outcome = results?.get(w.id);
        if (outcome === undefined) {
          // Its batch failed (nothing of it was written or counted): alone, it fails only its own job.
          outcome = await this.applier.applyEvents([w.id], this.turn).then(
            (one) => one.get(w.id) ?? new Error('no outcome'),
            (err: Error) => err,
          );
        }
        if (outcome instanceof Error) w.reject(outcome);
        else w.resolve(outcome);
      }),
    );
  }
}
