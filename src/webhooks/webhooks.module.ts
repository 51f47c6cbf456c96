import { DynamicModule, Module } from '@nestjs/common';
import { BullModule } from '@nestjs/bull';
import { AppRole } from '../config/app-config';
import { WEBHOOK_QUEUE } from './webhook-queue';

/** Ingestion (controller) for the api role, processing for the worker role; both for `all`. */
@Module({})
export class WebhooksModule {
  static forRole(role: AppRole): DynamicModule {
    void role;
    return { module: WebhooksModule, imports: [BullModule.registerQueue({ name: WEBHOOK_QUEUE })] };
  }
}
