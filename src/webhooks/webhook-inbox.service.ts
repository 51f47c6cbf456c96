import { randomBytes } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bull';
import type { Queue } from 'bull';
import { Metrics } from '../metrics/metrics';
import { InboxRepository, InboxSource } from './webhook-inbox.repository';
import { WEBHOOK_JOB_OPTIONS, WEBHOOK_QUEUE, WebhookJob } from './webhook-queue';

/** The few fields of an event the inbox needs; the rest stays in the raw payload. */
export interface InboxEventHead {
  id: string;
  type: string;
  created: number;
}

/** Longest an enqueue waits for Redis before leaving the job to the relay (the events are stored either way). */
const ENQUEUE_WAIT_MS = 1500;

/** Most events written by one INSERT. */
const MAX_BATCH = 256;
/** A job carries consecutive batches while the intake stays busy, up to about this many events... */
export const JOB_EVENTS = 64;
/** ...or for this long after its first batch was stored. */
export const JOB_HOLD_MS = 10;

interface PendingEvent {
  head: InboxEventHead;
  payload: string;
  source: InboxSource;
  resolve(outcome: 'stored' | 'duplicate'): void;
  reject(err: Error): void;
}

/** A job to put on the queue: its id, and the events it carries. */
export interface InboxJob {
  jobId: string;
  ids: string[];
}

/** The job the intake's batches are being stored under: added to the queue when the intake goes idle, or it is full or old. */
interface OpenJob extends InboxJob {
  openedAt: number;
}

/**
 * The inbox path shared by the webhook handler and the reconciler: store the
 * event (the unique id makes redelivery harmless), then hand it to Bull. The
 * rows of one or more consecutive INSERTs go as one job, whose id they carry (job_id), so the
 * relay can tell a job that was lost from one still waiting: no second write
 * per event to say it was queued.
 */
@Injectable()
export class WebhookInbox {
  private readonly logger = new Logger(WebhookInbox.name);
  private waiting: PendingEvent[] = [];
  private writing = false;
  private openJob?: OpenJob;

  constructor(
    private readonly rows: InboxRepository,
    @InjectQueue(WEBHOOK_QUEUE) private readonly queue: Queue<WebhookJob>,
    private readonly metrics: Metrics,
  ) {}

  /**
   * Stores one verified event and queues its batch's job; resolves once it is
   * durable, without waiting for Redis (the job only wakes a worker: a lost
   * one is queued again by the relay). Rejects only when it could not be stored.
   *
   * Group commit: while one batch is being written, arriving events wait and
   * go together in the next one: one INSERT for many events, with no timer,
   * so a lone event is written at once. While more are already waiting when a
   * batch is stored, its job stays open and the next batches' rows name it too
   * (up to JOB_EVENTS, JOB_HOLD_MS): fewer Bull jobs, each a few Redis round
   * trips for its add, its move to active and its move to finished.
   */
  accept(head: InboxEventHead, payload: string, source: InboxSource): Promise<'stored' | 'duplicate'> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ head, payload, source, resolve, reject });
      if (!this.writing) void this.writeBatches();
    });
  }

  private async writeBatches(): Promise<void> {
    this.writing = true;
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting.splice(0, MAX_BATCH);
        const job = (this.openJob ??= { jobId: newBatchJobId(), ids: [], openedAt: Date.now() });
        const stored = await this.storeBatch(batch, job.jobId);
        // Stored is durable: answer now. The job only wakes the worker; if it is lost (Redis down,
        // the process dies before addBulk), the relay finds the rows by their job_id and queues it.
        for (const entry of stored) {
          entry.resolve('stored');
          job.ids.push(entry.head.id);
        }
        // Closed only between INSERTs, so every row naming the job is in it.
        if (this.waiting.length === 0 || job.ids.length >= JOB_EVENTS || Date.now() - job.openedAt >= JOB_HOLD_MS) this.closeJob();
      }
    } finally {
      this.closeJob();
      this.writing = false;
    }
  }

  private closeJob(): void {
    const job = this.openJob;
    this.openJob = undefined;
    if (job && job.ids.length > 0) void this.enqueue([{ jobId: job.jobId, ids: job.ids }]);
  }

  /** Inserts a batch (its rows naming `jobId`) and settles every entry but the newly stored ones, which it returns. Never throws. */
  private async storeBatch(batch: PendingEvent[], jobId: string): Promise<PendingEvent[]> {
    // The same id twice in one batch: the later one shares the first one's fate.
    const unique = new Map<string, PendingEvent>();
    const repeats: PendingEvent[] = [];
    for (const entry of batch) {
      if (unique.has(entry.head.id)) repeats.push(entry);
      else unique.set(entry.head.id, entry);
    }
    const outcome = new Map<string, 'stored' | 'duplicate' | Error>();
    const write = async (entries: PendingEvent[]) => {
      const inserted = await this.rows.insertMany(entries.map((e) => ({ ...e.head, payload: e.payload, source: e.source })), 'intake', jobId);
      for (const e of entries) outcome.set(e.head.id, inserted.has(e.head.id) ? 'stored' : 'duplicate');
    };
    try {
      await write([...unique.values()]);
    } catch (err) {
      // One bad row must not fail its neighbours: a row error writes them one by one. A busy
      // database (a lock or statement timeout, no connection) fails them all at once.
      for (const entry of unique.values()) {
        try {
          if (unique.size === 1 || !isRowError(err)) throw err;
          await write([entry]);
        } catch (one) {
          outcome.set(entry.head.id, one as Error);
        }
      }
    }
    const stored: PendingEvent[] = [];
    for (const entry of unique.values()) {
      const result = outcome.get(entry.head.id);
      if (result instanceof Error) entry.reject(result);
      else if (result === 'duplicate') this.settleDuplicate(entry);
      else {
        this.metrics.webhooksReceived.inc({ type: entry.head.type });
        stored.push(entry);
      }
    }
    for (const entry of repeats) {
      const result = outcome.get(entry.head.id);
      if (result instanceof Error) entry.reject(result);
      else this.settleDuplicate(entry);
    }
    return stored;
  }

  private settleDuplicate(entry: PendingEvent): void {
    this.metrics.webhooksDuplicate.inc();
    entry.resolve('duplicate');
  }

  /**
   * Puts jobs on the queue (one addBulk; an id Bull still holds is not added
   * twice), waiting at most ENQUEUE_WAIT_MS. False when Redis is not there:
   * the rows stay unapplied and the relay queues their jobs later.
   */
  async enqueue(jobs: InboxJob[]): Promise<boolean> {
    if (jobs.length === 0) return true;
    if ((this.queue.client as { status?: string }).status !== 'ready') return false;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.queue.addBulk(jobs.map((j) => ({ data: { ids: j.ids }, opts: { ...WEBHOOK_JOB_OPTIONS, jobId: j.jobId } }))),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('enqueue timed out')), ENQUEUE_WAIT_MS))),
      ]);
      return true;
    } catch (err) {
      this.logger.warn({ msg: 'events stored but not queued; the relay will queue them', jobs: jobs.length, firstEventId: jobs[0]?.ids[0], error: (err as Error).message });
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Queues events stored without a job of their batch (the reconciler's, replays): one job each, its id the event's. */
  enqueueEach(ids: string[]): Promise<boolean> {
    return this.enqueue(ids.map((id) => ({ jobId: id, ids: [id] })));
  }

  /** Stores events found elsewhere (the reconciler's listing) in one INSERT, without queuing them; returns the ids that were new. */
  async storeMany(events: Array<InboxEventHead & { payload: string }>, source: InboxSource): Promise<Set<string>> {
    if (events.length === 0) return new Set();
    const stored = await this.rows.insertMany(events.map((e) => ({ ...e, source })), 'main');
    for (const e of events) if (stored.has(e.id)) this.metrics.webhooksReceived.inc({ type: e.type });
    return stored;
  }

  /** Enqueues again after a replay (the row was reset to a job of its own): a failed job with the same id would otherwise make add a no-op. */
  async requeue(id: string): Promise<boolean> {
    try {
      const job = await this.queue.getJob(id);
      if (job && ((await job.isFailed()) || (await job.isCompleted()))) await job.remove();
    } catch {
      // Redis down: enqueue below fails too and the relay takes over.
    }
    return this.enqueueEach([id]);
  }

  /** Of these job ids, those Bull no longer holds (a Redis without persistence forgets them when restarted); looked up concurrently. */
  async missingJobs(jobIds: string[]): Promise<string[]> {
    const jobs = await Promise.all(jobIds.map((id) => this.queue.getJob(id)));
    return jobIds.filter((_, i) => jobs[i] === null);
  }

  /**
   * Of these jobs (carrying rows not yet applied nor dead), those that will
   * never run again, removed so that adding the same job id queues it anew
   * (add ignores an id Bull still holds):
   * - failed its last attempt: its worker could not even mark the rows dead
   *   (the database was down through every retry);
   * - stuck, in no list at all: a worker that took the job before Redis
   *   restarted empty finished it afterwards, which wrote the job's record
   *   into the new Redis but could not move it anywhere.
   * Only jobs that were tried at least once are looked at (getState costs up
   * to six round trips): an untried job is in the wait list or was lost whole.
   */
  async takeBackDeadEndJobs(jobIds: string[]): Promise<string[]> {
    const jobs = await Promise.all(jobIds.map((id) => this.queue.getJob(id)));
    const taken = await Promise.all(
      jobs.map(async (job) => {
        if (!job || !(job.attemptsMade > 0 || job.failedReason)) return null;
        const state = await job.getState();
        if (state !== 'failed' && state !== 'stuck') return null;
        // A job a worker still holds the lock of is not removed (Bull refuses); the next sweep looks again.
        return job.remove().then(
          () => String(job.id),
          () => null,
        );
      }),
    );
    return taken.filter((id): id is string => id !== null);
  }
}

/** A batch's job id: unique, and told apart from an event's own id at a glance. */
function newBatchJobId(): string {
  return `batch_${randomBytes(9).toString('base64url')}`;
}

/** A data or constraint error (SQLSTATE class 22, 23): the rows, not the database, are at fault. */
function isRowError(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return code.startsWith('22') || code.startsWith('23');
}
