import { Global, Module } from '@nestjs/common';
import { ORDER_EVENTS_OUTBOX } from '../orders/order-events-outbox.port';
import { OrderEventsOutbox } from './order-events.outbox';
import { OrderEventsRepository } from './order-events.repository';

/**
 * The outbox under the orders module's port token. Global so the orders
 * module's writer finds it without importing this feature (orders imports
 * nothing that imports orders back); it needs only the database and config.
 */
@Global()
@Module({
  providers: [OrderEventsRepository, OrderEventsOutbox, { provide: ORDER_EVENTS_OUTBOX, useExisting: OrderEventsOutbox }],
  exports: [OrderEventsRepository, ORDER_EVENTS_OUTBOX],
})
export class OrderEventsOutboxModule {}
