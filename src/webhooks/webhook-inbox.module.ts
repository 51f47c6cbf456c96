import { Module } from '@nestjs/common';
import { BullModule } from '@nestjs/bull';
import { WebhookInbox } from './webhook-inbox.service';
import { WEBHOOK_QUEUE } from './webhook-queue';

/** The shared store-then-enqueue path (controller, reconciler, relay, replay). */
@Module({ imports: [BullModule.registerQueue({ name: WEBHOOK_QUEUE })], providers: [WebhookInbox], exports: [WebhookInbox] })
export class WebhookInboxModule {}
