import { OrderStatus } from './order-status';

export type CaptureMethod = 'automatic' | 'manual';

export interface OrderItem {
  sku: string;
  name: string;
  unitAmount: number;
  quantity: number;
}

/** A row of `orders`, as OrderRepository reads it. */
export interface Order {
  /** A random UUID: order ids are unguessable because GET /orders/:id needs no auth. */
  id: string;
  status: OrderStatus;
  /** Minor units, computed by the server from the items. */
  amount: number;
  currency: string;
  items: OrderItem[];
  customerEmail: string;
  /** The PSP's own total of refunded money; never incremented by us. */
  amountRefunded: number;
  captureMethod: CaptureMethod;
  /** Why the order needs a person to look at it; null otherwise. */
  reviewReason: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** Order ids are random UUIDs: anything else names no order (and would be a cast error in PostgreSQL). */
export function isOrderId(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
}
