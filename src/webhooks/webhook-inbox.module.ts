import { Module } from '@nestjs/common';
import { BullModule } from '@nestjs/bull';
import { InboxRepository } from './webhook-inbox.repository';
import { WebhookInbox } from './webhook-inbox.service';
import { WEBHOOK_QUEUE } from './webhook-queue';
import { WebhookQueueStats } from './webhook-queue-stats';

/** The inbox table and the queue: the shared store-then-enqueue path (handler, reconciler, relay, replay) and what health and metrics read. */
@Module({
  imports: [BullModule.registerQueue({ name: WEBHOOK_QUEUE })],
  providers: [InboxRepository, WebhookInbox, WebhookQueueStats],
  exports: [InboxRepository, WebhookInbox, WebhookQueueStats],
})
export class WebhookInboxModule {}
