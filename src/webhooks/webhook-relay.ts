import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { InboxRepository } from './webhook-inbox.repository';
import { WebhookInbox } from './webhook-inbox.service';

const RELAY_EVERY_MS = 2000;
/** Give the request path time to mark what it queued before treating a row as never queued. */
const RECEIVED_GRACE_MS = 2000;
/** A 'queued' row this old whose job Bull no longer has was lost with Redis (no persistence): queue it again. */
const QUEUED_GRACE_MS = 15_000;
const BATCH = 200;

/**
 * Finds stored events that never reached the queue (Redis was down when they
 * came in, or the process died between insert and enqueue) and queues them.
 * Runs in the worker role; re-queuing is harmless (jobId = event id, and the
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
      const receivedIds = await this.rows.idsWaiting('received', RECEIVED_GRACE_MS, BATCH);
      // Redis still down: nothing is marked, the next sweep tries again.
      const queued = (await this.inbox.enqueueAndMark(receivedIds)) ? receivedIds : [];

      const lostIds = await this.inbox.missingJobs(await this.rows.idsWaiting('queued', QUEUED_GRACE_MS, BATCH));
      const lost = (await this.inbox.enqueue(lostIds)) ? lostIds.length : 0;
      if (queued.length + lost > 0) this.logger.log({ msg: 'relayed stored events to the queue', received: queued.length, lostJobs: lost });
      return queued.length + lost;
    } catch (err) {
      this.logger.warn({ msg: 'relay sweep failed; next sweep retries', error: (err as Error).message });
      return 0;
    } finally {
      this.running = false;
    }
  }
}
