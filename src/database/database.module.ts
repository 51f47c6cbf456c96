import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { InitialSchema1763870000000 } from './migrations/1763870000000-initial-schema';
import { OrderEventsOutbox1764500000000 } from './migrations/1764500000000-order-events-outbox';
import { ManualCapture1764600000000 } from './migrations/1764600000000-manual-capture';
import { CheckoutSessions1764700000000 } from './migrations/1764700000000-checkout-sessions';
import { DisputeOutcomes1764800000000 } from './migrations/1764800000000-dispute-outcomes';
import { InFlightPaymentsIndex1764900000000 } from './migrations/1764900000000-in-flight-payments-index';
import { InboxBatchJobs1764950000000 } from './migrations/1764950000000-inbox-batch-jobs';
import { LighterOrderEventDeliveries1765000000000 } from './migrations/1765000000000-lighter-order-event-deliveries';
import { OrderEventClaimFunction1765100000000 } from './migrations/1765100000000-order-event-claim-function';
import { RoomForInPlaceUpdates1765200000000 } from './migrations/1765200000000-room-for-in-place-updates';
import { OrderEventParkBlocked1765300000000 } from './migrations/1765300000000-order-event-park-blocked';
import { OrderEventClaimByLine1765400000000 } from './migrations/1765400000000-order-event-claim-by-line';
import { OrderEventParkByKey1765500000000 } from './migrations/1765500000000-order-event-park-by-key';
import { Database, planPools } from './database';

export const MIGRATIONS = [
  InitialSchema1763870000000,
  OrderEventsOutbox1764500000000,
  ManualCapture1764600000000,
  CheckoutSessions1764700000000,
  DisputeOutcomes1764800000000,
  InFlightPaymentsIndex1764900000000,
  InboxBatchJobs1764950000000,
  LighterOrderEventDeliveries1765000000000,
  OrderEventClaimFunction1765100000000,
  RoomForInPlaceUpdates1765200000000,
  OrderEventParkBlocked1765300000000,
  OrderEventClaimByLine1765400000000,
  OrderEventParkByKey1765500000000,
];

/**
 * PostgreSQL: TypeORM opens the pool and runs the migrations (the schema comes
 * only from them, at start-up); repositories reach it through Database.
 */
@Global()
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        type: 'postgres' as const,
        url: config.databaseUrl,
        entities: [],
        migrations: MIGRATIONS,
        migrationsRun: false, // bootstrap.ts runs them behind an advisory lock
        // Several instances may start at once: each migration runs in its own transaction behind TypeORM's lock.
        migrationsTransactionMode: 'each' as const,
        synchronize: false,
        // DATABASE_POOL_SIZE counts the webhook intake's own connections too (see planPools, Database.intake).
        extra: { max: planPools(config.databasePoolSize).main, connectionTimeoutMillis: 5000 },
        // Fail fast at boot instead of TypeORM's default of retrying for half a minute.
        retryAttempts: 2,
        retryDelay: 500,
      }),
    }),
  ],
  providers: [Database],
  exports: [Database],
})
export class DatabaseModule {}
