/** A row of `refunds`: a Refund at the PSP, as we last saw it. */
export interface Refund {
  /** re_… */
  id: string;
  amount: number;
  /** Stripe's refund status: pending, requires_action, succeeded, failed, canceled. */
  status: string;
}
