import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { Order } from '../orders/order.entity';
import { OrderHistoryEntry } from '../orders/order-history.entity';
import { IdempotencyKey } from '../orders/idempotency-key.entity';
import { Payment } from '../payments/payment.entity';
import { Refund } from '../payments/refund.entity';
import { WebhookInboxEvent } from '../webhooks/webhook-inbox.entity';
import { ReconcilerState } from '../reconciliation/reconciler-state.entity';
import { InitialSchema1763870000000 } from './migrations/1763870000000-initial-schema';
import { OrderEventsOutbox1764500000000 } from './migrations/1764500000000-order-events-outbox';

export const ENTITIES = [Order, OrderHistoryEntry, IdempotencyKey, Payment, Refund, WebhookInboxEvent, ReconcilerState];
export const MIGRATIONS = [InitialSchema1763870000000, OrderEventsOutbox1764500000000];

/** PostgreSQL through TypeORM; the schema comes only from migrations, run at start-up. */
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        type: 'postgres' as const,
        url: config.databaseUrl,
        entities: ENTITIES,
        migrations: MIGRATIONS,
        migrationsRun: false, // bootstrap.ts runs them behind an advisory lock
        // Several instances may start at once: each migration runs in its own transaction behind TypeORM's lock.
        migrationsTransactionMode: 'each' as const,
        synchronize: false,
        extra: { max: config.databasePoolSize, connectionTimeoutMillis: 5000 },
        // Fail fast at boot instead of TypeORM's default of retrying for half a minute.
        retryAttempts: 2,
        retryDelay: 500,
      }),
    }),
  ],
})
export class DatabaseModule {}
