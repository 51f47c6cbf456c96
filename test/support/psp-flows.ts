import type Stripe from 'stripe';
import type { MockPsp } from '../../src/mock-psp';
import { waitFor } from './wait';

/** The payment flows the e2e property tests drive at the mock PSP, as a checkout and an operator would. */
export const FLOWS = ['success', 'failureThenSuccess', 'threeDs', 'threeDsFailure', 'partialThenFullRefund', 'dispute', 'cancel'] as const;
export type FlowName = (typeof FLOWS)[number];

async function confirm(stripe: Stripe, pi: string, method: string): Promise<void> {
  try {
    await stripe.paymentIntents.confirm(pi, { payment_method: method });
  } catch (err) {
    // A declined card answers 402, exactly as at Stripe; the failure is in the events.
    if ((err as { statusCode?: number }).statusCode !== 402) throw err;
  }
}

/** Runs the flow for PaymentIntent `pi` and returns the events the mock emitted for it (oldest first). */
export async function runFlow(stripe: Stripe, mock: MockPsp, pi: string, flow: FlowName): Promise<Stripe.Event[]> {
  switch (flow) {
    case 'success':
      await confirm(stripe, pi, 'pm_card_visa');
      break;
    case 'failureThenSuccess':
      await confirm(stripe, pi, 'pm_card_chargeDeclined');
      await confirm(stripe, pi, 'pm_card_visa');
      break;
    case 'threeDs':
      await confirm(stripe, pi, 'pm_card_authenticationRequired');
      mock.completeAuthentication(pi, 'succeed');
      break;
    case 'threeDsFailure':
      await confirm(stripe, pi, 'pm_card_authenticationRequired');
      mock.completeAuthentication(pi, 'fail');
      break;
    case 'partialThenFullRefund':
      await confirm(stripe, pi, 'pm_card_visa');
      await stripe.refunds.create({ payment_intent: pi, amount: 1000 });
      await stripe.refunds.create({ payment_intent: pi });
      break;
    case 'dispute':
      await confirm(stripe, pi, 'pm_card_createDispute');
      // The mock opens the dispute a (scaled) moment after the charge, as Stripe does.
      await waitFor(async () => eventsFor(mock, pi).some((e) => e.type === 'charge.dispute.created'), 'dispute opened', 10000, 20);
      break;
    case 'cancel':
      await stripe.paymentIntents.cancel(pi);
      break;
  }
  return eventsFor(mock, pi);
}

/** Every event the mock emitted that concerns PaymentIntent `pi` (its charges, refunds and disputes name it). */
export function eventsFor(mock: MockPsp, pi: string): Stripe.Event[] {
  return mock.events().filter((e) => {
    const o = e.data.object as unknown as { id?: string; payment_intent?: string | { id: string } | null };
    const owner = typeof o.payment_intent === 'string' ? o.payment_intent : o.payment_intent?.id;
    return o.id === pi || owner === pi;
  });
}

/** The order status and refunded figure the PSP's current state implies. */
export async function pspTruth(stripe: Stripe, mock: MockPsp, pi: string): Promise<{ status: string; amountRefunded: number }> {
  const intent = await stripe.paymentIntents.retrieve(pi);
  const chargeId = typeof intent.latest_charge === 'string' ? intent.latest_charge : intent.latest_charge?.id;
  const charge = chargeId ? await stripe.charges.retrieve(chargeId) : null;
  const amountRefunded = charge?.amount_refunded ?? 0;
  const disputed = eventsFor(mock, pi).some((e) => e.type.startsWith('charge.dispute.'));
  let status: string;
  if (disputed) status = 'disputed';
  else if (amountRefunded >= intent.amount) status = 'refunded';
  else if (amountRefunded > 0) status = 'partially_refunded';
  else if (intent.status === 'succeeded') status = 'paid';
  else if (intent.status === 'canceled') status = 'canceled';
  else if (intent.status === 'requires_action') status = 'requires_action';
  else if (intent.status === 'processing') status = 'processing';
  else status = intent.last_payment_error ? 'payment_failed' : 'pending_payment';
  return { status, amountRefunded };
}

/** Each history entry starts where the previous ended, and no transition appears twice. */
export function historyProblems(history: Array<{ from: string; to: string }>): string | null {
  const seen = new Set<string>();
  let at = 'pending_payment';
  for (const h of history) {
    const key = `${h.from}->${h.to}`;
    if (seen.has(key)) return `transition ${key} recorded twice`;
    if (h.from !== at) return `entry ${key} does not start at ${at}`;
    seen.add(key);
    at = h.to;
  }
  return null;
}
