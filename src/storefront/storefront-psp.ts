import { Inject, Injectable } from '@nestjs/common';
import Stripe from 'stripe';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { createStripeSdk } from '../psp/stripe.client';

/** What confirming a card at the PSP came to, in the shop's terms. */
export type CardOutcome =
  | { kind: 'succeeded' | 'processing' }
  | { kind: 'requires_action' }
  | { kind: 'declined'; message: string };

/**
 * The storefront's own calls to the PSP, with its own SDK instance: it plays
 * the customer's side (confirming a PaymentIntent with a card, passing
 * 3-D Secure), which the backend never does. Everything the order becomes
 * still reaches the order through the PSP's webhooks.
 */
@Injectable()
export class StorefrontPsp {
  private readonly sdk: Stripe;
  /**
   * The card form confirms on the server with Stripe's test PaymentMethods,
   * which only a Stripe-compatible test server (the bundled mock, reached via
   * STRIPE_API_URL) is meant to take this way; real Stripe collects cards
   * through Stripe.js.
   */
  readonly cardFormAvailable: boolean;
  /** Where the hosted payment page lives, for the shop pages' CSP form-action (the form's redirect goes there). */
  readonly hostedPageOrigins: string[];

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.sdk = createStripeSdk(config);
    this.cardFormAvailable = config.stripe.apiUrl !== undefined;
    this.hostedPageOrigins = config.stripe.apiUrl ? [new URL(config.stripe.apiUrl).origin] : ['https://checkout.stripe.com'];
  }

  /** Confirms the PaymentIntent with a test PaymentMethod; a decline is an outcome, not an error. */
  async confirmWithTestCard(paymentIntentId: string, paymentMethod: string): Promise<CardOutcome> {
    try {
      const intent = await this.sdk.paymentIntents.confirm(paymentIntentId, { payment_method: paymentMethod });
      return outcomeOf(intent);
    } catch (err) {
      if (err instanceof Stripe.errors.StripeCardError) return { kind: 'declined', message: err.message };
      throw err;
    }
  }

  /**
   * Finishes the 3-D Secure challenge the way the bundled mock offers it: its
   * test helper `POST /v1/test_helpers/payment_intents/:id/authenticate`
   * (`outcome` succeed or fail), in the spirit of Stripe's test helpers.
   */
  async completeAuthentication(paymentIntentId: string, outcome: 'succeed' | 'fail'): Promise<CardOutcome> {
    const response = await this.sdk.rawRequest('POST', `/v1/test_helpers/payment_intents/${encodeURIComponent(paymentIntentId)}/authenticate`, { outcome });
    return outcomeOf(response as unknown as Stripe.PaymentIntent);
  }

  async retrievePaymentIntent(id: string): Promise<Stripe.PaymentIntent> {
    return this.sdk.paymentIntents.retrieve(id);
  }

  /** The order a Checkout Session was made for: Settle names it as the session's client_reference_id and metadata.order_id. */
  async orderIdOfCheckoutSession(sessionId: string): Promise<string | undefined> {
    const session = await this.sdk.checkout.sessions.retrieve(sessionId);
    return session.client_reference_id ?? session.metadata?.order_id ?? undefined;
  }
}

function outcomeOf(intent: Stripe.PaymentIntent): CardOutcome {
  switch (intent.status) {
    case 'succeeded':
    case 'requires_capture':
      return { kind: 'succeeded' };
    case 'processing':
      return { kind: 'processing' };
    case 'requires_action':
      return { kind: 'requires_action' };
    default:
      return { kind: 'declined', message: intent.last_payment_error?.message ?? `The payment did not go through (${intent.status}).` };
  }
}
