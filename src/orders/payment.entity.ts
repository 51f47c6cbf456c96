/** A row of `payments`: the order's PaymentIntent as we last saw it at the PSP. */
export interface Payment {
  /** The PaymentIntent id, pi_…; for a Checkout Session without its PaymentIntent yet, the session's id. */
  id: string;
  orderId: string;
  /** Stripe's PaymentIntent status, verbatim. */
  status: string;
  clientSecret: string;
  /** Set when the order is paid on a hosted Checkout Session (then `id` is the session's until it creates its PaymentIntent). */
  checkoutSessionId: string | null;
  checkoutUrl: string | null;
  /** Held and not captured yet (manual capture). */
  amountCapturable: number;
  /** Captured at the PSP; null until then. */
  amountCaptured: number | null;
  /** End of the capture window of an authorization; null when none is known. */
  captureBefore: Date | null;
}

/** A succeeded payment that names the order but is not its own PaymentIntent, or came after the order closed. */
export interface UnexpectedPayment {
  id: string;
  amount: number;
  currency: string;
  status: string;
}
