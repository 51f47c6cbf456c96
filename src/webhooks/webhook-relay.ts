import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { InboxRepository } from './webhook-inbox.repository';
import { WebhookInbox } from './webhook-inbox.service';

const RELAY_EVERY_MS = 2000;
/**
 * Rows unapplied this long have their job looked up: a batch's enqueue gets
 * ENQUEUE_WAIT_MS after its INSERT, and a job found waiting is left alone, so
 * a backlog costs one look-up per job a sweep, not a second run of its events.
 */
const UNAPPLIED_GRACE_MS = 3000;
const BATCH = 200;

/**
 * Finds stored events whose job Bull does not hold (Redis was down when they
 * came in or restarted empty, the process died between insert and enqueue) or
 * holds at a dead end (failed its last attempt without marking the rows dead,
 * or stuck in no list), and queues that job again under the same id with the
 * rows still unapplied. Runs in the worker role; re-queuing is harmless (the
 * processor skips events already applied).
 */
@Injectable()
export class WebhookRelay implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(WebhookRelay.name);
  private running = false;

  constructor(private readonly rows: InboxRepository, private readonly inbox: WebhookInbox, private readonly scheduler: SchedulerRegistry) {}

  onApplicationBootstrap(): void {
    this.scheduler.addInterval('webhook-relay', setInterval(() => void this.runOnce(), RELAY_EVERY_MS));
  }

  onApplicationShutdown(): void {
    if (this.scheduler.doesExist('interval', 'webhook-relay')) this.scheduler.deleteInterval('webhook-relay');
  }

  /** One sweep; returns how many events it queued. */
  async runOnce(): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    try {
      const rows = await this.rows.unappliedSince(UNAPPLIED_GRACE_MS, BATCH);
      const byJob = new Map<string, string[]>();
      for (const row of rows) {
        const ids = byJob.get(row.jobId);
        if (ids) ids.push(row.id);
        else byJob.set(row.jobId, [row.id]);
      }
      const jobIds = [...byJob.keys()];
      const lostIds = await this.inbox.missingJobs(jobIds);
      const lost = new Set(lostIds);
      const deadEndIds = await this.inbox.takeBackDeadEndJobs(jobIds.filter((id) => !lost.has(id)));
      const jobs = [...lostIds, ...deadEndIds].map((jobId) => ({ jobId, ids: byJob.get(jobId) ?? [] }));
      // Redis still down: the next sweep tries again.
      const queued = (await this.inbox.enqueue(jobs)) ? jobs.reduce((n, j) => n + j.ids.length, 0) : 0;
      if (queued > 0) this.logger.log({ msg: 'relayed stored events to the queue', events: queued, lostJobs: lostIds.length, deadEndJobs: deadEndIds.length });
      return queued;
    } catch (err) {
      this.logger.warn({ msg: 'relay sweep failed; next sweep retries', error: (err as Error).message });
      return 0;
    } finally {
      this.running = false;
    }
  }
}
