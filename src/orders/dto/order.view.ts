import { ApiProperty } from '@nestjs/swagger';
import { Order } from '../order.entity';
import { OrderHistoryEntry } from '../order-history.entity';
import { Payment, UnexpectedPayment } from '../payment.entity';
import { ORDER_STATUSES, OrderStatus } from '../order-status';
import { DisputeRecord } from '../payment-state';

export class OrderItemView {
  @ApiProperty({ example: 'TSHIRT-M' }) sku: string;
  @ApiProperty({ example: 'T-shirt, size M' }) name: string;
  @ApiProperty({ example: 1299 }) unitAmount: number;
  @ApiProperty({ example: 2 }) quantity: number;
}

export class PaymentView {
  @ApiProperty({ example: 'pi_3Q0abc', nullable: true, type: String, description: 'null for a Checkout Session that has not created its PaymentIntent yet' }) id: string | null;
  @ApiProperty({ example: 'requires_payment_method', description: "The PaymentIntent's status at the PSP (a Checkout Session's, open or expired, until it has one)" }) status: string;
  @ApiProperty({ example: 'pi_3Q0abc_secret_xyz', nullable: true, type: String, description: 'For the checkout client (Stripe.js) to confirm the payment; null with a Checkout Session' })
  clientSecret: string | null;
  @ApiProperty({ required: false, example: 'cs_test_a1b2c3' }) checkoutSessionId?: string;
  @ApiProperty({ required: false, example: 'https://checkout.stripe.com/c/pay/cs_test_a1b2c3', description: 'Send the customer here to pay' }) checkoutUrl?: string;
}

export class UnexpectedPaymentView {
  @ApiProperty({ example: 'pi_3Q0def' }) id: string;
  @ApiProperty({ example: 3448 }) amount: number;
  @ApiProperty({ example: 'usd' }) currency: string;
  @ApiProperty({ example: 'succeeded' }) status: string;
}

export class DisputeView {
  @ApiProperty({ example: 'dp_1Q0abc' }) id: string;
  @ApiProperty({ example: 'needs_response', description: "Stripe's dispute status: needs_response, under_review, won, lost, warning_* for inquiries" }) status: string;
  @ApiProperty({ example: 'fraudulent', nullable: true, type: String }) reason: string | null;
  @ApiProperty({ example: 3448 }) amount: number;
  @ApiProperty({ example: '2026-12-08T10:00:00.000Z', nullable: true, type: String, description: 'Submit evidence before this' }) evidenceDueBy: string | null;
}

export class HistoryEntryView {
  @ApiProperty({ enum: ORDER_STATUSES }) from: OrderStatus;
  @ApiProperty({ enum: ORDER_STATUSES }) to: OrderStatus;
  @ApiProperty({ example: '2026-11-23T10:00:00.000Z' }) at: string;
  @ApiProperty({ example: 'payment_intent.succeeded' }) reason: string;
  @ApiProperty({ example: 'evt_1Q0abc', nullable: true, type: String }) eventId: string | null;
}

/** The order as the API shows it (CONTRACT section 2). */
export class OrderView {
  @ApiProperty({ example: '0b7c2a9e-5f1d-4c8e-9a7b-3d2e1f0a9b8c' }) id: string;
  @ApiProperty({ enum: ORDER_STATUSES, example: 'pending_payment' }) status: OrderStatus;
  @ApiProperty({ example: 3448, description: 'Minor units, computed from the items' }) amount: number;
  @ApiProperty({ example: 'usd' }) currency: string;
  @ApiProperty({ type: [OrderItemView] }) items: OrderItemView[];
  @ApiProperty({ example: 'ada@example.com' }) customerEmail: string;
  @ApiProperty({ enum: ['automatic', 'manual'], example: 'automatic', description: 'manual: the payment is authorized first and captured with POST /orders/:id/capture' })
  captureMethod: 'automatic' | 'manual';
  @ApiProperty({ type: PaymentView, nullable: true }) payment: PaymentView | null;
  @ApiProperty({ example: 0, description: "The PSP's total refunded, minor units" }) amountRefunded: number;
  @ApiProperty({ type: [HistoryEntryView] }) history: HistoryEntryView[];
  @ApiProperty({ example: '2026-11-23T10:00:00.000Z' }) createdAt: string;
  @ApiProperty({ example: '2026-11-23T10:00:05.000Z' }) updatedAt: string;
  @ApiProperty({ required: false, example: 3448, description: 'Manual capture: held and not captured yet, minor units' }) amountCapturable?: number;
  @ApiProperty({ required: false, nullable: true, type: String, example: '2026-11-30T10:00:00.000Z', description: 'Manual capture: the authorization lapses at this time unless captured' })
  captureBefore?: string | null;
  @ApiProperty({ required: false, example: 3000, description: 'Captured at the PSP (less than amount after a partial capture); present once captured' }) amountCaptured?: number;
  @ApiProperty({ required: false, example: 'payment succeeded after the order was expired', description: 'Present when the status is needs_review' }) reviewReason?: string;
  @ApiProperty({ required: false, type: [UnexpectedPaymentView], description: 'Money taken that the order did not ask for; present when any' })
  unexpectedPayments?: UnexpectedPaymentView[];
  @ApiProperty({ required: false, type: DisputeView, description: 'Present once the payment was disputed' }) dispute?: DisputeView;
}

export class OrderPage {
  @ApiProperty({ type: [OrderView] }) data: OrderView[];
  @ApiProperty({ nullable: true, type: String, description: 'Pass as cursor for the next page; null on the last page' }) nextCursor: string | null;
}

export class RefundView {
  @ApiProperty({ example: 're_3Q0abc' }) id: string;
  @ApiProperty({ example: 1000 }) amount: number;
  @ApiProperty({ example: 'succeeded' }) status: string;
}

export class RefundResult {
  @ApiProperty({ type: RefundView }) refund: RefundView;
  @ApiProperty({ type: OrderView }) order: OrderView;
}

/**
 * The view of GET /orders/:id. OrderRepository.transitionViewsSql builds the
 * same object in SQL for the outgoing order events: change both together.
 */
export function toOrderView(
  order: Order,
  payment: Payment | null,
  history: OrderHistoryEntry[],
  unexpected: UnexpectedPayment[] = [],
  dispute: DisputeRecord | null = null,
): OrderView {
  const view: OrderView = {
    id: order.id,
    status: order.status,
    amount: order.amount,
    currency: order.currency,
    items: order.items,
    customerEmail: order.customerEmail,
    captureMethod: order.captureMethod,
    payment: payment ? paymentView(payment) : null,
    amountRefunded: order.amountRefunded,
    history: history.map((h) => ({ from: h.from, to: h.to, at: h.at.toISOString(), reason: h.reason, eventId: h.eventId })),
    createdAt: order.createdAt.toISOString(),
    updatedAt: order.updatedAt.toISOString(),
  };
  if (order.captureMethod === 'manual') {
    view.amountCapturable = payment?.amountCapturable ?? 0;
    view.captureBefore = payment?.captureBefore ? payment.captureBefore.toISOString() : null;
  }
  if (payment && payment.amountCaptured !== null) view.amountCaptured = payment.amountCaptured;
  if (order.reviewReason !== null) view.reviewReason = order.reviewReason;
  if (unexpected.length > 0) view.unexpectedPayments = unexpected.map(({ id, amount, currency, status }) => ({ id, amount, currency, status }));
  if (dispute) {
    view.dispute = {
      id: dispute.id,
      status: dispute.status,
      reason: dispute.reason,
      amount: dispute.amount,
      evidenceDueBy: dispute.evidenceDueBy === null ? null : new Date(dispute.evidenceDueBy * 1000).toISOString(),
    };
  }
  return view;
}

function paymentView(payment: Payment): PaymentView {
  if (!payment.checkoutSessionId) return { id: payment.id, status: payment.status, clientSecret: payment.clientSecret };
  return {
    id: payment.id === payment.checkoutSessionId ? null : payment.id,
    status: payment.status,
    clientSecret: payment.clientSecret || null,
    checkoutSessionId: payment.checkoutSessionId,
    checkoutUrl: payment.checkoutUrl ?? undefined,
  };
}
