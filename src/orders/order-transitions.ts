import { EntityManager } from 'typeorm';
import { Order } from './order.entity';
import { OrderHistoryEntry } from './order-history.entity';
import { OrderStatus, canTransition } from './order-status';
import { orderTransitions } from '../metrics/metrics';
import { OrderEventsOutbox } from '../order-events/order-events.outbox'; // outbox hook

/**
 * Changes an order's status and appends its history entry, inside the caller's
 * transaction (which must hold the order row lock: see lockOrder). Returns false,
 * changing nothing, when the machine does not allow the step.
 */
export async function transitionOrder(
  outbox: OrderEventsOutbox, // outbox hook
  manager: EntityManager,
  order: Order,
  to: OrderStatus,
  reason: string,
  eventId: string | null,
  at: Date = new Date(),
): Promise<boolean> {
  if (!canTransition(order.status, to)) return false;
  const from = order.status;
  order.status = to;
  order.updatedAt = at;
  await manager.update(Order, { id: order.id }, { status: to, updatedAt: at, amountRefunded: order.amountRefunded });
  await manager.insert(OrderHistoryEntry, { orderId: order.id, from, to, at, reason, eventId });
  await outbox.record(manager, [{ orderId: order.id, from, to, at, reason, eventId }]); // outbox hook
  orderTransitions.inc({ from, to });
  return true;
}

/**
 * Locks the order row for the rest of the transaction. Under MVCC two workers
 * would otherwise both read the old status and both append history; FOR UPDATE
 * makes the second wait and then read what the first committed.
 */
export function lockOrder(manager: EntityManager, orderId: string): Promise<Order | null> {
  return manager.getRepository(Order).createQueryBuilder('o').setLock('pessimistic_write').where('o.id = :orderId', { orderId }).getOne();
}
