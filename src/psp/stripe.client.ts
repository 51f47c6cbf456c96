import { Inject, Injectable, Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import Stripe from 'stripe';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { DomainError, ErrorCode } from '../common/errors/domain-error';
import { Metrics } from '../metrics/metrics';
import { CheckoutSessionInput, PspClient } from './psp-client';

/** The API version the SDK speaks (and renders objects in); webhook endpoints should send events in it too. */
export const SDK_API_VERSION: string = (Stripe as unknown as { API_VERSION: string }).API_VERSION;

/** Builds the one SDK instance; STRIPE_API_URL points it at a Stripe-compatible server (the mock PSP). */
export function createStripeSdk(config: AppConfig): Stripe {
  const options: ConstructorParameters<typeof Stripe>[1] = {
    // The SDK retries connection errors and 5xx with the same idempotency key, so a retry creates nothing twice.
    maxNetworkRetries: 2,
    timeout: 15000,
    telemetry: false,
  };
  if (config.stripe.apiUrl) {
    const url = new URL(config.stripe.apiUrl);
    options.host = url.hostname;
    options.protocol = url.protocol === 'http:' ? 'http' : 'https';
    options.port = url.port || (url.protocol === 'http:' ? 80 : 443);
  }
  return new Stripe(config.stripe.secretKey, options);
}

/** Turns SDK errors into domain errors: a declined card is the payer's problem, an outage is a 503, never our 500. */
export function toDomainError(err: unknown, doing: string): Error {
  if (!(err instanceof Stripe.errors.StripeError)) return err as Error;
  if (err instanceof Stripe.errors.StripeCardError) {
    return new DomainError(ErrorCode.CardDeclined, `The card was declined while ${doing}: ${err.message}`);
  }
  // 409: the PSP still runs the first request with this Idempotency-Key (ours, after a timeout, or a concurrent one).
  if (err instanceof Stripe.errors.StripeIdempotencyError || err.statusCode === 409) {
    return new DomainError(ErrorCode.Conflict, `The PSP is still handling an identical request while ${doing}; retry shortly`);
  }
  if (
    err instanceof Stripe.errors.StripeConnectionError ||
    err instanceof Stripe.errors.StripeAPIError ||
    err instanceof Stripe.errors.StripeRateLimitError ||
    (err.statusCode !== undefined && err.statusCode >= 500)
  ) {
    return new DomainError(ErrorCode.PspUnavailable, `The payment provider is unavailable while ${doing}; retry later (${err.message})`);
  }
  return new DomainError(ErrorCode.PspRejected, `The payment provider rejected the request while ${doing}: ${err.message}`);
}

/**
 * The PSP through the Stripe SDK. Every mutating call carries an
 * Idempotency-Key derived from our own ids, so a retry (ours or the SDK's)
 * never creates a second PaymentIntent or Refund.
 */
@Injectable()
export class StripeClient implements PspClient {
  private readonly logger = new Logger(StripeClient.name);
  private readonly sdk: Stripe;

  constructor(@Inject(APP_CONFIG) config: AppConfig, private readonly metrics: Metrics) {
    this.sdk = createStripeSdk(config);
  }

  private async call<T>(operation: string, doing: string, fn: () => Promise<T>): Promise<T> {
    const done = this.metrics.pspCallSeconds.startTimer({ operation });
    try {
      const result = await fn();
      done({ result: 'ok' });
      return result;
    } catch (err) {
      done({ result: 'error' });
      this.metrics.pspCallErrors.inc({ operation, type: err instanceof Stripe.errors.StripeError ? err.type : 'other' });
      const mapped = toDomainError(err, doing);
      if (mapped !== err) this.logger.warn(`PSP call failed while ${doing}: ${(err as Error).message}`);
      throw mapped;
    }
  }

  createPaymentIntent(input: { orderId: string; amount: number; currency: string; email: string; captureMethod: 'automatic' | 'manual'; allowRedirects?: boolean }): Promise<Stripe.PaymentIntent> {
    return this.call('create_payment_intent', 'creating the PaymentIntent', () =>
      this.sdk.paymentIntents.create(
        {
          amount: input.amount,
          currency: input.currency,
          receipt_email: input.email,
          metadata: { order_id: input.orderId },
          automatic_payment_methods: { enabled: true, allow_redirects: input.allowRedirects ? 'always' : 'never' },
          ...(input.captureMethod === 'manual' ? { capture_method: 'manual' as const } : {}),
        },
        { idempotencyKey: `settle:order:${input.orderId}:payment-intent` },
      ),
    );
  }

  createCheckoutSession(input: CheckoutSessionInput): Promise<Stripe.Checkout.Session> {
    const metadata = { order_id: input.orderId };
    return this.call('create_checkout_session', 'creating the Checkout Session', () =>
      this.sdk.checkout.sessions.create(
        {
          mode: 'payment',
          line_items: input.items.map((item) => ({
            price_data: { currency: input.currency, unit_amount: item.unitAmount, product_data: { name: item.name } },
            quantity: item.quantity,
          })),
          customer_email: input.email,
          client_reference_id: input.orderId,
          metadata,
          payment_intent_data: { metadata, ...(input.captureMethod === 'manual' ? { capture_method: 'manual' as const } : {}) },
          success_url: input.successUrl,
          cancel_url: input.cancelUrl,
          expires_at: input.expiresAt,
        },
        { idempotencyKey: `settle:order:${input.orderId}:checkout-session` },
      ),
    );
  }

  retrieveCheckoutSession(id: string): Promise<Stripe.Checkout.Session> {
    return this.call('retrieve_checkout_session', 'retrieving the Checkout Session', () =>
      this.sdk.checkout.sessions.retrieve(id, { expand: ['payment_intent'] }),
    );
  }

  expireCheckoutSession(id: string, orderId: string): Promise<Stripe.Checkout.Session> {
    return this.call('expire_checkout_session', 'expiring the Checkout Session', () =>
      this.sdk.checkout.sessions.expire(id, {}, { idempotencyKey: `settle:order:${orderId}:checkout-session:expire` }),
    );
  }

  retrievePaymentIntent(id: string): Promise<Stripe.PaymentIntent> {
    return this.call('retrieve_payment_intent', 'retrieving the PaymentIntent', () => this.sdk.paymentIntents.retrieve(id, { expand: ['latest_charge'] }));
  }

  cancelPaymentIntent(id: string, orderId: string, reason?: 'abandoned'): Promise<Stripe.PaymentIntent> {
    const why = reason ?? 'requested_by_customer';
    return this.call('cancel_payment_intent', 'canceling the PaymentIntent', () =>
      this.sdk.paymentIntents.cancel(id, { cancellation_reason: why }, { idempotencyKey: `settle:order:${orderId}:cancel:${why}` }),
    );
  }

  /** The key names the amount: a retry captures once, and a different amount is a new request (which the PSP refuses once captured). */
  capturePaymentIntent(id: string, orderId: string, amount?: number): Promise<Stripe.PaymentIntent> {
    return this.call('capture_payment_intent', 'capturing the PaymentIntent', () =>
      this.sdk.paymentIntents.capture(
        id,
        { ...(amount !== undefined ? { amount_to_capture: amount } : {}), expand: ['latest_charge'] },
        { idempotencyKey: `settle:order:${orderId}:capture:${amount ?? 'all'}` },
      ),
    );
  }

  /** `sequence` is the number of refunds the order already has plus one. */
  createRefund(input: { orderId: string; paymentIntentId: string; amount: number; sequence: number }): Promise<Stripe.Refund> {
    return this.call('create_refund', 'creating the refund', () =>
      this.sdk.refunds.create(
        { payment_intent: input.paymentIntentId, amount: input.amount, metadata: { order_id: input.orderId } },
        { idempotencyKey: `settle:order:${input.orderId}:refund:${input.sequence}` },
      ),
    );
  }

  retrieveCharge(id: string): Promise<Stripe.Charge> {
    // Its refunds listed: newer API versions leave them out unless expanded.
    return this.call('retrieve_charge', 'retrieving the charge', () => this.sdk.charges.retrieve(id, { expand: ['refunds'] }));
  }

  submitDisputeEvidence(id: string, orderId: string, text: string): Promise<Stripe.Dispute> {
    const key = createHash('sha256').update(text).digest('hex').slice(0, 16);
    return this.call('update_dispute', 'submitting dispute evidence', () =>
      this.sdk.disputes.update(id, { evidence: { uncategorized_text: text }, submit: true }, { idempotencyKey: `settle:order:${orderId}:dispute:${id}:evidence:${key}` }),
    );
  }

  closeDispute(id: string, orderId: string): Promise<Stripe.Dispute> {
    return this.call('close_dispute', 'accepting the dispute', () => this.sdk.disputes.close(id, {}, { idempotencyKey: `settle:order:${orderId}:dispute:${id}:close` }));
  }

  listEvents(params: Stripe.EventListParams): Promise<Stripe.ApiList<Stripe.Event>> {
    return this.call('list_events', 'listing events', () => this.sdk.events.list(params));
  }
}
