import type Stripe from 'stripe';
import { AUTOMATIC, EventLog } from './events';
import { Deadlines } from './deadlines';
import { nowSeconds } from './ids';

/**
 * How long a card authorization can be captured: 7 days for online
 * customer-initiated payments on Visa, Mastercard, Amex and Discover
 * (docs.stripe.com/payments/place-a-hold-on-a-payment-method).
 */
export const CARD_AUTHORIZATION_WINDOW_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * The capture window of each uncaptured PaymentIntent: when it ends, the
 * authorization lapses (see Deadlines for how the waits are kept).
 */
export class AuthorizationWindows {
  private readonly deadlines: Deadlines;

  constructor(
    private readonly timeScale: number,
    lapse: (paymentIntentId: string) => void,
  ) {
    this.deadlines = new Deadlines(lapse);
  }

  /** Opens the window for an authorized PaymentIntent; returns its end as Stripe's `capture_before` (unix seconds). */
  open(paymentIntentId: string): number {
    const deadline = Date.now() + CARD_AUTHORIZATION_WINDOW_MS * this.timeScale;
    this.deadlines.set(paymentIntentId, deadline);
    return Math.floor(deadline / 1000);
  }

  /** The authorization was captured or canceled: nothing lapses any more. */
  close(paymentIntentId: string): void {
    this.deadlines.clear(paymentIntentId);
  }

  /** Windows still open. */
  get size(): number {
    return this.deadlines.size;
  }

  stop(): void {
    this.deadlines.stop();
  }
}

/**
 * The end of a capture window, as Stripe handles it: the uncaptured charge
 * expires (its authorization released, so it reads as refunded), the
 * PaymentIntent is canceled with reason `automatic`; `charge.expired`, then
 * `payment_intent.canceled`.
 */
export function lapseAuthorization(
  paymentIntents: Map<string, Stripe.PaymentIntent>,
  charges: Map<string, Stripe.Charge>,
  events: EventLog,
  paymentIntentId: string,
): void {
  const pi = paymentIntents.get(paymentIntentId);
  if (!pi || pi.status !== 'requires_capture') return;
  const charge = typeof pi.latest_charge === 'string' ? charges.get(pi.latest_charge) : undefined;
  pi.status = 'canceled';
  pi.canceled_at = nowSeconds();
  pi.cancellation_reason = 'automatic';
  pi.amount_capturable = 0;
  if (charge && !charge.captured) {
    charge.amount_refunded = charge.amount;
    charge.refunded = true;
    events.emit('charge.expired', charge, AUTOMATIC);
  }
  events.emit('payment_intent.canceled', pi, AUTOMATIC);
}

/** Puts the end of the capture window where Stripe shows it: `payment_method_details.card.capture_before`. */
export function setCaptureBefore(charge: Stripe.Charge, captureBefore: number): void {
  const card = charge.payment_method_details?.card;
  if (card) card.capture_before = captureBefore;
}
