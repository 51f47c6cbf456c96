/** A row of `payments`: the order's PaymentIntent as we last saw it at the PSP. */
export interface Payment {
  /** The PaymentIntent id, pi_… */
  id: string;
  orderId: string;
  /** Stripe's PaymentIntent status, verbatim. */
  status: string;
  clientSecret: string;
}
