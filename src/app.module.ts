import { DynamicModule, Module } from '@nestjs/common';
import { BullModule } from '@nestjs/bull';
import { ScheduleModule } from '@nestjs/schedule';
import { ThrottlerModule } from '@nestjs/throttler';
import { BullBoardModule } from '@bull-board/nestjs';
import { ExpressAdapter } from '@bull-board/express';
import { BullAdapter } from '@bull-board/api/bullAdapter';
import { AppConfig } from './config/app-config';
import { APP_CONFIG, ConfigModule } from './config/config.module';
import { DatabaseModule } from './database/database.module';
import { OrdersHttpModule } from './orders/orders.module';
import { WebhooksModule } from './webhooks/webhooks.module';
import { WEBHOOK_QUEUE, WEBHOOK_QUEUE_SETTINGS } from './webhooks/webhook-queue';
import { ReconciliationModule } from './reconciliation/reconciliation.module';
import { OrderEventsModule } from './order-events/order-events.module';
import { HealthModule } from './health/health.module';
import { MetricsModule } from './metrics/metrics.module';
import { LoggingModule } from './logging/logging.module';
import { adminAuthMiddleware } from './common/admin-auth.middleware';
import { AuthFailureThrottle, AuthFailureThrottleModule } from './common/auth-failure-throttle';
import { ApplyBacklogModule } from './common/apply-backlog';
import { StorefrontModule } from './storefront/storefront.module';

/** Composes the process for its APP_ROLE: api serves HTTP, worker processes the queue and reconciles, all does both. */
@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    const serves = config.role !== 'worker';
    const works = config.role !== 'api';
    // One per app: the admin guard, Bull Board and the /docs and /metrics gates count wrong keys together.
    const authThrottle = new AuthFailureThrottle();
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggingModule,
        AuthFailureThrottleModule.forRoot(authThrottle),
        DatabaseModule,
        BullModule.forRootAsync({
          inject: [APP_CONFIG],
          // Every registration of the queue (processor, health, metrics) shares these settings.
          useFactory: (c: AppConfig) => ({ url: c.redisUrl, prefix: c.queuePrefix, settings: WEBHOOK_QUEUE_SETTINGS }),
        }),
        MetricsModule.forRoot(serves),
        ApplyBacklogModule,
        WebhooksModule.forRole(config.role),
        OrderEventsModule.forRole(config.role),
        ...(serves
          ? [
              ThrottlerModule.forRoot({
                // Named 'default' so the 429 carries a plain Retry-After header (other names get a suffix).
                throttlers: [{ name: 'default', ttl: 60_000, limit: config.rateLimitPerMinute }],
                // RATE_LIMIT_PER_MINUTE=0 (the default): off, since a storefront server calls from one address for all its shoppers.
                skipIf: () => config.rateLimitPerMinute === 0,
                errorMessage: `Too many requests: at most ${config.rateLimitPerMinute} a minute per client; retry after the Retry-After header's seconds`,
              }),
              OrdersHttpModule,
              HealthModule,
              BullBoardModule.forRoot({ route: '/admin/queues', adapter: ExpressAdapter, middleware: adminAuthMiddleware(config.adminApiKey, authThrottle) }),
              BullBoardModule.forFeature({ name: WEBHOOK_QUEUE, adapter: BullAdapter }),
              ...(config.demoStorefront ? [StorefrontModule] : []),
            ]
          : []),
        ...(works ? [ScheduleModule.forRoot(), ReconciliationModule] : []),
      ],
    };
  }
}
