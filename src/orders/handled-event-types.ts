import type Stripe from 'stripe';

/**
 * The Stripe event types Settle acts on: the one list that the webhook
 * endpoint is registered with (`npm run stripe:webhook-endpoint`), so Stripe
 * sends exactly what the processor reads. Other types that still arrive
 * (`stripe listen`, an endpoint set to `*`) are recorded, not processed.
 *
 * `satisfies` checks every entry against the SDK's own list of event types.
 */
export const HANDLED_EVENT_TYPES = [
  // Read by readEvent (src/orders/payment-state.ts).
  'payment_intent.created',
  'payment_intent.requires_action',
  'payment_intent.processing',
  'payment_intent.payment_failed',
  'payment_intent.succeeded',
  'payment_intent.canceled',
  'payment_intent.amount_capturable_updated',
  'payment_intent.partially_funded',
  'charge.succeeded',
  'charge.failed',
  'charge.pending',
  'charge.captured',
  'charge.refunded',
  'charge.refund.updated',
  'refund.created',
  'refund.updated',
  // A refund that failed after it succeeded (the ledger lowers amountRefunded).
  'refund.failed',
  // Disputes, their outcome, reason, amount and deadline (decideDispute).
  'charge.dispute.created',
  'charge.dispute.updated',
  'charge.dispute.closed',
  'charge.dispute.funds_withdrawn',
  'charge.dispute.funds_reinstated',
  // An authorization that lapsed: recorded; the payment_intent.canceled (reason automatic) that follows expires the order.
  'charge.expired',
  // Hosted Checkout Sessions (factFromSession).
  'checkout.session.completed',
  'checkout.session.async_payment_succeeded',
  'checkout.session.async_payment_failed',
  'checkout.session.expired',
] as const satisfies readonly Stripe.WebhookEndpointCreateParams.EnabledEvent[];

export type HandledEventType = (typeof HANDLED_EVENT_TYPES)[number];
