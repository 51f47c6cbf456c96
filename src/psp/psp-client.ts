import type Stripe from 'stripe';

/**
 * What Settle asks of a PSP. StripeClient implements it with the SDK; the
 * service-tier tests put a fake in its place per test (no HTTP). Every
 * mutating call carries an Idempotency-Key derived from Settle's own ids.
 */
export abstract class PspClient {
  abstract createPaymentIntent(input: { orderId: string; amount: number; currency: string; email: string; captureMethod: 'automatic' | 'manual' }): Promise<Stripe.PaymentIntent>;
  /** With its latest charge expanded (an authorization's capture window is on the charge). */
  abstract retrievePaymentIntent(id: string): Promise<Stripe.PaymentIntent>;
  /** `reason` abandoned: Settle gave up on an unpaid order (it expires); otherwise an admin canceled it. */
  abstract cancelPaymentIntent(id: string, orderId: string, reason?: 'abandoned'): Promise<Stripe.PaymentIntent>;
  /** Captures an authorization, all of it or `amount`; the rest is released. */
  abstract capturePaymentIntent(id: string, orderId: string, amount?: number): Promise<Stripe.PaymentIntent>;
  /** `sequence` numbers the order's refunds: a retry of the same request gets the same Refund back. */
  abstract createRefund(input: { orderId: string; paymentIntentId: string; amount: number; sequence: number }): Promise<Stripe.Refund>;
  abstract retrieveCharge(id: string): Promise<Stripe.Charge>;
  abstract listEvents(params: Stripe.EventListParams): Promise<Stripe.ApiList<Stripe.Event>>;
}
