import { DynamicModule, Module } from '@nestjs/common';
import { BullModule } from '@nestjs/bull';
import { ScheduleModule } from '@nestjs/schedule';
import { AppConfig } from './config/app-config';
import { APP_CONFIG, ConfigModule } from './config/config.module';
import { DatabaseModule } from './database/database.module';
import { PspModule } from './payments/psp/psp.module';
import { OrdersModule } from './orders/orders.module';
import { WebhooksModule } from './webhooks/webhooks.module';
import { ReconciliationModule } from './reconciliation/reconciliation.module';
import { HealthModule } from './health/health.module';

/** Composes the process for its APP_ROLE: api serves HTTP, worker processes the queue and reconciles, all does both. */
@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    const serves = config.role !== 'worker';
    const works = config.role !== 'api';
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        DatabaseModule,
        BullModule.forRootAsync({
          inject: [APP_CONFIG],
          useFactory: (c: AppConfig) => ({ url: c.redisUrl, prefix: c.queuePrefix }),
        }),
        PspModule,
        WebhooksModule.forRole(config.role),
        ...(serves ? [OrdersModule, HealthModule] : []),
        ...(works ? [ScheduleModule.forRoot(), ReconciliationModule] : []),
      ],
    };
  }
}
