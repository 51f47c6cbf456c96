import type Stripe from 'stripe';
import { AUTOMATIC, EventLog } from './events';
import { nowSeconds } from './ids';

/**
 * How long a card authorization can be captured: 7 days for online
 * customer-initiated payments on Visa, Mastercard, Amex and Discover
 * (docs.stripe.com/payments/place-a-hold-on-a-payment-method).
 */
export const CARD_AUTHORIZATION_WINDOW_MS = 7 * 24 * 60 * 60 * 1000;

/** setTimeout fires at once for delays past 2^31-1 ms (about 24.8 days), so longer waits are chained. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The capture window of each uncaptured PaymentIntent: when it ends, the
 * authorization lapses. Kept apart from the mock's other scheduled changes so
 * `MockPsp.idle()` does not wait days for it; the timers never keep the process
 * alive and end with `stop()`.
 */
export class AuthorizationWindows {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly timeScale: number,
    private readonly lapse: (paymentIntentId: string) => void,
  ) {}

  /** Opens the window for an authorized PaymentIntent; returns its end as Stripe's `capture_before` (unix seconds). */
  open(paymentIntentId: string): number {
    this.close(paymentIntentId);
    const deadline = Date.now() + CARD_AUTHORIZATION_WINDOW_MS * this.timeScale;
    if (!this.stopped) this.waitUntil(paymentIntentId, deadline);
    return Math.floor(deadline / 1000);
  }

  /** The authorization was captured or canceled: nothing lapses any more. */
  close(paymentIntentId: string): void {
    const timer = this.timers.get(paymentIntentId);
    if (timer) clearTimeout(timer);
    this.timers.delete(paymentIntentId);
  }

  /** Windows still open. */
  get size(): number {
    return this.timers.size;
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private waitUntil(paymentIntentId: string, deadline: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(paymentIntentId);
      if (this.stopped) return;
      if (Date.now() < deadline) this.waitUntil(paymentIntentId, deadline);
      else this.lapse(paymentIntentId);
    }, Math.min(Math.max(0, deadline - Date.now()), MAX_TIMER_MS));
    timer.unref();
    this.timers.set(paymentIntentId, timer);
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
