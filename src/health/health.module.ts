import { Module } from '@nestjs/common';
import { BullModule } from '@nestjs/bull';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from './health.controller';
import { WEBHOOK_QUEUE } from '../webhooks/webhook-queue';
import { ShutdownState } from './shutdown-state';

@Module({ imports: [TerminusModule.forRoot({ logger: false }), BullModule.registerQueue({ name: WEBHOOK_QUEUE })], controllers: [HealthController], providers: [ShutdownState], exports: [ShutdownState] })
export class HealthModule {}
