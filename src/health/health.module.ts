import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { WebhookInboxModule } from '../webhooks/webhook-inbox.module';
import { HealthController } from './health.controller';

@Module({ imports: [TerminusModule.forRoot({ logger: false }), WebhookInboxModule], controllers: [HealthController] })
export class HealthModule {}
