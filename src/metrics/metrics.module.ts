import { Module } from '@nestjs/common';
import { BullModule } from '@nestjs/bull';
import { MetricsController } from './metrics.controller';
import { WEBHOOK_QUEUE } from '../webhooks/webhook-queue';

@Module({ imports: [BullModule.registerQueue({ name: WEBHOOK_QUEUE })], controllers: [MetricsController] })
export class MetricsModule {}
