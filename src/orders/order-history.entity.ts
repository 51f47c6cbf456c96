import { OrderStatus } from './order-status';

/** A row of `order_status_history`: one per status change, written in the same transaction as the change. */
export interface OrderHistoryEntry {
  orderId: string;
  from: OrderStatus;
  to: OrderStatus;
  at: Date;
  reason: string;
  /** The PSP event (or reconciler record) that caused the change; null for changes made by an API call. */
  eventId: string | null;
}
