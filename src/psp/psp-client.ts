import type Stripe from 'stripe';

/**
 * What Settle asks of a PSP. StripeClient implements it with the SDK; the
 * service-tier tests put a fake in its place per test (no HTTP). Every
 * mutating call carries an Idempotency-Key derived from Settle's own ids.
 */
export abstract class PspClient {
  /** `allowRedirects`: the checkout client gives a return_url, so redirect payment methods may be offered. */
  abstract createPaymentIntent(input: {
    orderId: string;
    amount: number;
    currency: string;
    email: string;
    captureMethod: 'automatic' | 'manual';
    allowRedirects?: boolean;
  }): Promise<Stripe.PaymentIntent>;
  /** A hosted Checkout Session for the order: its lines, the order id on the session and its PaymentIntent, open until `expiresAt`. */
  abstract createCheckoutSession(input: CheckoutSessionInput): Promise<Stripe.Checkout.Session>;
  /** With its PaymentIntent expanded. */
  abstract retrieveCheckoutSession(id: string): Promise<Stripe.Checkout.Session>;
  abstract expireCheckoutSession(id: string, orderId: string): Promise<Stripe.Checkout.Session>;
  /** With its latest charge expanded (an authorization's capture window is on the charge). */
  abstract retrievePaymentIntent(id: string): Promise<Stripe.PaymentIntent>;
  /** `reason` abandoned: Settle gave up on an unpaid order (it expires); otherwise an admin canceled it. */
  abstract cancelPaymentIntent(id: string, orderId: string, reason?: 'abandoned'): Promise<Stripe.PaymentIntent>;
  /** Captures an authorization, all of it or `amount`; the rest is released. */
  abstract capturePaymentIntent(id: string, orderId: string, amount?: number): Promise<Stripe.PaymentIntent>;
  /** `sequence` numbers the order's refunds: a retry of the same request gets the same Refund back. */
  abstract createRefund(input: { orderId: string; paymentIntentId: string; amount: number; sequence: number }): Promise<Stripe.Refund>;
  abstract retrieveCharge(id: string): Promise<Stripe.Charge>;
  /** Submits evidence (free text) for a dispute. */
  abstract submitDisputeEvidence(id: string, orderId: string, text: string): Promise<Stripe.Dispute>;
  /** Accepts a dispute: it closes as lost. */
  abstract closeDispute(id: string, orderId: string): Promise<Stripe.Dispute>;
  abstract listEvents(params: Stripe.EventListParams): Promise<Stripe.ApiList<Stripe.Event>>;
}

export interface CheckoutSessionInput {
  orderId: string;
  currency: string;
  email: string;
  items: Array<{ name: string; unitAmount: number; quantity: number }>;
  captureMethod: 'automatic' | 'manual';
  successUrl: string;
  cancelUrl: string;
  /** Epoch seconds. */
  expiresAt: number;
}
