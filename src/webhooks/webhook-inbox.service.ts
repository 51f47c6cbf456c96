import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bull';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Queue } from 'bull';
import type { Pool } from 'pg';
import { DataSource, EntityManager } from 'typeorm';
import { webhooksDuplicate, webhooksReceived } from '../metrics/metrics';
import { WEBHOOK_JOB_OPTIONS, WEBHOOK_QUEUE, WebhookJob } from './webhook-queue';

export type InboxSource = 'webhook' | 'reconciler';

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

const INSERT_SQL = `INSERT INTO webhook_events (id, type, payload, event_created, source, status, received_at)
  VALUES ($1, $2, $3, $4, $5, 'received', now()) ON CONFLICT (id) DO NOTHING RETURNING 1`;

/**
 * The inbox path shared by the webhook controller and the reconciler:
 * store the event (the unique id makes redelivery harmless), then hand it to
 * Bull with jobId = event id (the second dedupe), then mark it queued.
 */
@Injectable()
export class WebhookInbox implements OnModuleDestroy {
  private readonly logger = new Logger(WebhookInbox.name);
  /** The pg pool under TypeORM: one parameterized query, no entity hydration, on the hot path. */
  private readonly pool: Pool;
  private toMark: string[] = [];
  private markTimer?: NodeJS.Timeout;
  private marking: Promise<void> = Promise.resolve();

  constructor(@InjectDataSource() private readonly db: DataSource, @InjectQueue(WEBHOOK_QUEUE) private readonly queue: Queue<WebhookJob>) {
    this.pool = (db.driver as unknown as { master: Pool }).master;
  }

  /** Stores, enqueues and acknowledges one verified event. Throws only when it could not be stored. */
  async accept(head: InboxEventHead, payload: string, source: InboxSource): Promise<'stored' | 'duplicate'> {
    const result = await this.pool.query(INSERT_SQL, [head.id, head.type, payload, head.created, source]);
    if (result.rowCount === 0) {
      webhooksDuplicate.inc();
      return 'duplicate';
    }
    webhooksReceived.inc({ type: head.type });
    if (await this.enqueue(head.id)) this.markQueuedSoon(head.id);
    return 'stored';
  }

  /** The same insert inside a caller's transaction (the reconciler's); true when the event is new. */
  async storeWith(manager: EntityManager, head: InboxEventHead, payload: string, source: InboxSource): Promise<boolean> {
    const rows: unknown[] = await manager.query(INSERT_SQL, [head.id, head.type, payload, head.created, source]);
    if (rows.length > 0) webhooksReceived.inc({ type: head.type });
    return rows.length > 0;
  }

  /**
   * Puts the event on the queue, waiting at most ENQUEUE_WAIT_MS. False when
   * Redis is not there: the row stays 'received' and the relay retries it.
   */
  async enqueue(id: string): Promise<boolean> {
    if ((this.queue.client as { status?: string }).status !== 'ready') return false;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.queue.add({ id }, { ...WEBHOOK_JOB_OPTIONS, jobId: id }),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('enqueue timed out')), ENQUEUE_WAIT_MS))),
      ]);
      return true;
    } catch (err) {
      this.logger.warn({ msg: 'event stored but not queued; the relay will queue it', eventId: id, error: (err as Error).message });
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Enqueues again after a replay: a failed job with the same id would otherwise make add a no-op. */
  async requeue(id: string): Promise<boolean> {
    try {
      const job = await this.queue.getJob(id);
      if (job && ((await job.isFailed()) || (await job.isCompleted()))) await job.remove();
    } catch {
      // Redis down: enqueue below fails too and the relay takes over.
    }
    const queued = await this.enqueue(id);
    if (queued) await this.markQueued([id]);
    return queued;
  }

  /** Whether Bull still holds a job for the event (a Redis without persistence forgets them when restarted). */
  async hasJob(id: string): Promise<boolean> {
    return (await this.queue.getJob(id)) !== null;
  }

  markQueuedSoon(id: string): void {
    this.toMark.push(id);
    this.markTimer ??= setTimeout(() => {
      this.markTimer = undefined;
      const ids = this.toMark;
      this.toMark = [];
      this.marking = this.markQueued(ids).catch((err) =>
        // Harmless: rows left 'received' are re-queued by the relay, and Bull's jobId dedupes.
        this.logger.warn({ msg: 'could not mark events queued', count: ids.length, error: (err as Error).message }),
      );
    }, MARK_QUEUED_EVERY_MS);
  }

  /** Only 'received' rows: a fast worker may already have processed the event. */
  async markQueued(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.pool.query(`UPDATE webhook_events SET status = 'queued' WHERE id = ANY($1) AND status = 'received'`, [ids]);
  }

  async onModuleDestroy(): Promise<void> {
    if (this.markTimer) {
      clearTimeout(this.markTimer);
      this.markTimer = undefined;
      const ids = this.toMark;
      this.toMark = [];
      await this.markQueued(ids).catch(() => undefined);
    }
    await this.marking;
  }
}
