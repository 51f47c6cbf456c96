import { Injectable, OnModuleInit } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bull';
import type { Queue } from 'bull';
import { Metrics } from '../metrics/metrics';
import { InboxRepository } from './webhook-inbox.repository';
import { WEBHOOK_QUEUE, WebhookJob } from './webhook-queue';

/**
 * What others may read of the webhook queue and inbox: Redis's answer and the
 * backlog for /health, and the queue and inbox gauges, filled at each scrape.
 */
@Injectable()
export class WebhookQueueStats implements OnModuleInit {
  constructor(@InjectQueue(WEBHOOK_QUEUE) private readonly queue: Queue<WebhookJob>, private readonly inbox: InboxRepository, private readonly metrics: Metrics) {}

  onModuleInit(): void {
    this.metrics.onScrape(() => this.readQueue());
    this.metrics.onScrape(() => this.readInbox());
  }

  /** Redis's PONG, through the queue's own connection. */
  ping(): Promise<string> {
    return this.queue.client.ping();
  }

  /** Jobs waiting or delayed. */
  async backlog(): Promise<number> {
    const counts = await this.queue.getJobCounts();
    return counts.waiting + counts.delayed;
  }

  private async readQueue(): Promise<void> {
    const counts = await this.queue.getJobCounts();
    for (const state of ['waiting', 'active', 'delayed', 'failed'] as const) this.metrics.queueJobs.set({ state }, counts[state] ?? 0);
  }

  private async readInbox(): Promise<void> {
    const { lagSeconds, dead } = await this.inbox.lagAndDead();
    this.metrics.inboxLagSeconds.set(lagSeconds);
    this.metrics.queueJobs.set({ state: 'dead' }, dead);
  }
}
