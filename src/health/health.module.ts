import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { WebhookInboxModule } from '../webhooks/webhook-inbox.module';
import { HealthController } from './health.controller';
import { ShutdownState } from './shutdown-state';

@Module({ imports: [TerminusModule.forRoot({ logger: false }), WebhookInboxModule], controllers: [HealthController], providers: [ShutdownState], exports: [ShutdownState] })
export class HealthModule {}
