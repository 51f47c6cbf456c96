import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
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

/** Longest the request path waits for Redis before answering: the event is stored, the relay finishes the job. */
const ENQUEUE_WAIT_MS = 1500;
/** 'queued' marks are batched: one UPDATE per tick instead of one per request. */
const MARK_QUEUED_EVERY_MS = 50;

/** Most events written by one INSERT. */
const MAX_BATCH = 256;

interface PendingEvent {
  head: InboxEventHead;
  payload: string;
  source: InboxSource;
  resolve(outcome: 'stored' | 'duplicate'): void;
  reject(err: Error): void;
}

/**
 * The inbox path shared by the webhook handler and the reconciler:
 * store the event (the unique id makes redelivery harmless), then hand it to
 * Bull with jobId = event id (the second dedupe), then mark it queued.
 */
@Injectable()
export class WebhookInbox implements OnModuleDestroy {
  private readonly logger = new Logger(WebhookInbox.name);
  private toMark: string[] = [];
  private markTimer?: NodeJS.Timeout;
  private marking: Promise<void> = Promise.resolve();
  private waiting: PendingEvent[] = [];
  private writing = false;

  constructor(
    private readonly rows: InboxRepository,
    @InjectQueue(WEBHOOK_QUEUE) private readonly queue: Queue<WebhookJob>,
    private readonly metrics: Metrics,
  ) {}

  /**
   * Stores and enqueues one verified event; resolves once it is durable (and
   * queued, or left for the relay). Rejects only when it could not be stored.
   *
   * Group commit: while one batch is being written, arriving events wait and
   * go together in the next one: one INSERT and one Bull addBulk for many
   * events, with no timer, so a lone event is written at once.
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
        const stored = await this.storeBatch(batch);
        // Enqueue without holding up the next batch's INSERT; each request still answers after its enqueue.
        if (stored.length > 0) void this.enqueueStored(stored);
      }
    } finally {
      this.writing = false;
    }
  }

  /** Inserts a batch and settles every entry but the newly stored ones, which it returns. Never throws. */
  private async storeBatch(batch: PendingEvent[]): Promise<PendingEvent[]> {
    // The same id twice in one batch: the later one shares the first one's fate.
    const unique = new Map<string, PendingEvent>();
    const repeats: PendingEvent[] = [];
    for (const entry of batch) {
      if (unique.has(entry.head.id)) repeats.push(entry);
      else unique.set(entry.head.id, entry);
    }
    const outcome = new Map<string, 'stored' | 'duplicate' | Error>();
    const write = async (entries: PendingEvent[]) => {
      const inserted = await this.insertMany(entries);
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

  private insertMany(entries: PendingEvent[]): Promise<Set<string>> {
    return this.rows.insertMany(entries.map((e) => ({ ...e.head, payload: e.payload, source: e.source })), 'intake');
  }

  private async enqueueStored(stored: PendingEvent[]): Promise<void> {
    const ids = stored.map((e) => e.head.id);
    if (await this.enqueue(ids)) this.markQueuedSoon(...ids);
    for (const entry of stored) entry.resolve('stored');
  }

  /**
   * Puts events on the queue (one addBulk), waiting at most ENQUEUE_WAIT_MS.
   * False when Redis is not there: the rows stay 'received' and the relay retries them.
   */
  async enqueue(ids: string[]): Promise<boolean> {
    if (ids.length === 0) return true;
    if ((this.queue.client as { status?: string }).status !== 'ready') return false;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.queue.addBulk(ids.map((id) => ({ data: { id }, opts: { ...WEBHOOK_JOB_OPTIONS, jobId: id } }))),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('enqueue timed out')), ENQUEUE_WAIT_MS))),
      ]);
      return true;
    } catch (err) {
      this.logger.warn({ msg: 'events stored but not queued; the relay will queue them', count: ids.length, firstEventId: ids[0], error: (err as Error).message });
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stores events found elsewhere (the reconciler's listing) in one INSERT, without queuing them; returns the ids that were new. */
  async storeMany(events: Array<InboxEventHead & { payload: string }>, source: InboxSource): Promise<Set<string>> {
    if (events.length === 0) return new Set();
    const stored = await this.rows.insertMany(events.map((e) => ({ ...e, source })), 'main');
    for (const e of events) if (stored.has(e.id)) this.metrics.webhooksReceived.inc({ type: e.type });
    return stored;
  }

  /** Enqueues again after a replay: a failed job with the same id would otherwise make add a no-op. */
  async requeue(id: string): Promise<boolean> {
    try {
      const job = await this.queue.getJob(id);
      if (job && ((await job.isFailed()) || (await job.isCompleted()))) await job.remove();
    } catch {
      // Redis down: enqueue below fails too and the relay takes over.
    }
    return this.enqueueAndMark([id]);
  }

  /**
   * Enqueues, then marks the rows 'queued'. False when Redis is not there: the
   * rows stay 'received' for the relay. A failed mark is harmless (a row left
   * 'received' costs a relay re-add that Bull's job id makes a no-op).
   */
  async enqueueAndMark(ids: string[]): Promise<boolean> {
    if (!(await this.enqueue(ids))) return false;
    await this.rows.markQueued(ids).catch((err) => this.logger.warn({ msg: 'could not mark events queued', count: ids.length, error: (err as Error).message }));
    return true;
  }

  /** The events Bull no longer holds a job for (a Redis without persistence forgets them when restarted); looked up concurrently. */
  async missingJobs(ids: string[]): Promise<string[]> {
    const jobs = await Promise.all(ids.map((id) => this.queue.getJob(id)));
    return ids.filter((_, i) => jobs[i] === null);
  }

  private markQueuedSoon(...ids: string[]): void {
    this.toMark.push(...ids);
    this.markTimer ??= setTimeout(() => {
      this.markTimer = undefined;
      const ids = this.toMark;
      this.toMark = [];
      this.marking = this.rows.markQueued(ids).catch((err) =>
        // Harmless: rows left 'received' are re-queued by the relay, and Bull's jobId dedupes.
        this.logger.warn({ msg: 'could not mark events queued', count: ids.length, error: (err as Error).message }),
      );
    }, MARK_QUEUED_EVERY_MS);
  }

  async onModuleDestroy(): Promise<void> {
    if (this.markTimer) {
      clearTimeout(this.markTimer);
      this.markTimer = undefined;
      const ids = this.toMark;
      this.toMark = [];
      await this.rows.markQueued(ids).catch(() => undefined);
    }
    await this.marking;
  }
}

/** A data or constraint error (SQLSTATE class 22, 23): the rows, not the database, are at fault. */
function isRowError(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return code.startsWith('22') || code.startsWith('23');
}
