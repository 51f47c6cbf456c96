import { Controller, Get, Header } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { InjectQueue } from '@nestjs/bull';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Queue } from 'bull';
import { DataSource } from 'typeorm';
import { WEBHOOK_QUEUE } from '../webhooks/webhook-queue';
import { inboxLagSeconds, queueJobs, registry } from './metrics';

/** Prometheus scrape endpoint. Queue and inbox gauges are read when scraped, so they cost nothing in between. */
@ApiExcludeController()
@Controller('metrics')
export class MetricsController {
  constructor(@InjectQueue(WEBHOOK_QUEUE) private readonly queue: Queue, @InjectDataSource() private readonly db: DataSource) {}

  @Get()
  @Header('Content-Type', registry.contentType)
  async scrape(): Promise<string> {
    await Promise.all([this.readQueue(), this.readInbox()]);
    return registry.metrics();
  }

  private async readQueue(): Promise<void> {
    try {
      const counts = await this.queue.getJobCounts();
      for (const state of ['waiting', 'active', 'delayed', 'failed'] as const) queueJobs.set({ state }, counts[state] ?? 0);
    } catch {
      // Redis down: keep the last values; /health reports the outage.
    }
  }

  private async readInbox(): Promise<void> {
    try {
      const [row] = await this.db.query(
        `SELECT
           COALESCE(EXTRACT(EPOCH FROM now() - min(received_at) FILTER (WHERE status IN ('received', 'queued'))), 0) AS lag,
           count(*) FILTER (WHERE status = 'dead') AS dead
         FROM webhook_events WHERE status IN ('received', 'queued', 'dead')`,
      );
      inboxLagSeconds.set(Number(row?.lag ?? 0));
      queueJobs.set({ state: 'dead' }, Number(row?.dead ?? 0));
    } catch {
      // Database down: same as above.
    }
  }
}
