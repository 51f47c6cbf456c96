import { Inject, Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { OrderTransition } from './order-event.types';
import { OrderEventsRepository } from './order-events.repository';

/**
 * The transactional outbox: the transition writer calls `record` inside the
 * transaction that changes the orders, so an order's events commit with its
 * changes or not at all. Sending happens later, elsewhere (OrderEventSender).
 */
@Injectable()
export class OrderEventsOutbox {
  constructor(private readonly events: OrderEventsRepository, @Inject(APP_CONFIG) private readonly config: AppConfig) {}

  /**
   * Writes one event per transition (in the order given; an order's events
   * get the next sequence numbers) and its deliveries, in one statement. The
   * caller holds each order's row lock and has already written the orders,
   * payments and history rows of these transitions.
   */
  record(manager: EntityManager, transitions: OrderTransition[]): Promise<void> {
    return this.events.insertForTransitions(manager, transitions, this.config.orderEvents.endpoints);
  }
}
