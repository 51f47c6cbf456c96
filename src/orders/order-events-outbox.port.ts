import { Queryable } from '../database/database';
import { OrderStatus } from './order-status';

/** One status change as the writer hands it to the outbox: its record, and the time its history entry carries. */
export interface WrittenTransition {
  orderId: string;
  from: OrderStatus;
  to: OrderStatus;
  reason: string;
  eventId: string | null;
  at: Date;
}

/**
 * Where the transition writer's flush records outgoing order events, in the
 * same transaction, after its own statement wrote the orders, payments and
 * history (the outbox's statement sees them). Defined here and provided by the
 * order-events module under ORDER_EVENTS_OUTBOX, so orders imports no feature
 * that imports orders back; absent (nothing recorded) where that module is not loaded.
 *
 * `orderViews(batch)` is the order aggregate's SQL for the events' `data` (see
 * OrderRepository.transitionViewsSql): the outbox's own SQL names only its tables.
 */
export interface OrderEventsOutboxPort {
  record(tx: Queryable, transitions: WrittenTransition[], orderViews: (batch: string) => string): Promise<void>;
}

export const ORDER_EVENTS_OUTBOX = Symbol('ORDER_EVENTS_OUTBOX');
