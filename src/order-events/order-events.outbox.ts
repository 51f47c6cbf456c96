import { Inject, Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { Queryable } from '../database/database';
import type { OrderEventsOutboxPort, WrittenTransition } from '../orders/order-events-outbox.port';
import { OrderEventsRepository } from './order-events.repository';

/**
 * The transactional outbox: the transition writer's flush calls `record`
 * inside the transaction that changes the orders, so an order's events commit
 * with its changes or not at all. Sending happens later, elsewhere (OrderEventSender).
 */
@Injectable()
export class OrderEventsOutbox implements OrderEventsOutboxPort {
  constructor(private readonly events: OrderEventsRepository, @Inject(APP_CONFIG) private readonly config: AppConfig) {}

  /**
   * Writes one event per transition (in the order given; an order's events
   * get the next sequence numbers) and its deliveries, in one statement. The
   * caller holds each order's row lock and has already written the orders,
   * payments and history rows of these transitions.
   */
  record(tx: Queryable, transitions: WrittenTransition[], orderViews: (batch: string) => string): Promise<void> {
    return this.events.insertForTransitions(tx, transitions, orderViews, this.config.orderEvents.endpoints);
  }
}
