import { Order, OrderItem } from '../order.entity';
import { OrderHistoryEntry } from '../order-history.entity';
import { Payment } from '../../payments/payment.entity';
import { OrderStatus } from '../order-status';

/** The order as the API shows it (CONTRACT section 2). */
export interface OrderView {
  id: string;
  status: OrderStatus;
  amount: number;
  currency: string;
  items: OrderItem[];
  customerEmail: string;
  payment: { id: string; status: string; clientSecret: string } | null;
  amountRefunded: number;
  history: { from: OrderStatus; to: OrderStatus; at: string; reason: string; eventId: string | null }[];
  createdAt: string;
  updatedAt: string;
}

export function toOrderView(order: Order, payment: Payment | null, history: OrderHistoryEntry[]): OrderView {
  return {
    id: order.id,
    status: order.status,
    amount: order.amount,
    currency: order.currency,
    items: order.items,
    customerEmail: order.customerEmail,
    payment: payment ? { id: payment.id, status: payment.status, clientSecret: payment.clientSecret } : null,
    amountRefunded: order.amountRefunded,
    history: history.map((h) => ({ from: h.from, to: h.to, at: h.at.toISOString(), reason: h.reason, eventId: h.eventId })),
    createdAt: order.createdAt.toISOString(),
    updatedAt: order.updatedAt.toISOString(),
  };
}
