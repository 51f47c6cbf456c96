import type Stripe from 'stripe';
import type { MockPsp } from '../../src/mock-psp';
import { waitFor } from './wait';

/** The payment flows the e2e property tests drive at the mock PSP, as a checkout and an operator would. */
export const FLOWS = [
  'success',
  'failureThenSuccess',
  'threeDs',
  'threeDsFailure',
  'partialThenFullRefund',
  'dispute',
  'disputeWon',
  'disputeLost',
  'refundFails',
  'cancel',
  'manualCapture',
  'partialCapture',
  'voidAuthorization',
] as const;
/**
 * Flows that wait for the mock's clock: an authorization lapses when its
 * capture window (7 days x the mock's timeScale) ends, so only a mock started
 * with a tiny timeScale (0.00002: about 12 s) runs them in reasonable time.
 */
export const SLOW_FLOWS = ['authorizationExpiry'] as const;
export type FlowName = (typeof FLOWS)[number] | (typeof SLOW_FLOWS)[number];

const MANUAL_CAPTURE_FLOWS: readonly FlowName[] = ['manualCapture', 'partialCapture', 'voidAuthorization', 'authorizationExpiry'];

/** The captureMethod to create the order with: the manual-capture flows need an authorization to capture or release. */
export function captureMethodFor(flow: FlowName): 'automatic' | 'manual' {
  return MANUAL_CAPTURE_FLOWS.includes(flow) ? 'manual' : 'automatic';
}

/** refundFails refunds this much first, then the rest; with pm_card_refundFail both turn failed later. */
export const FAILING_REFUND_FIRST = 1000;

/** partialCapture captures this much of the order (orderBody's 3448), then refunds `firstRefund` of it and then the rest. */
export const PARTIAL_CAPTURE = { capture: 2000, firstRefund: 500 } as const;

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
      await openedDispute(mock, pi);
      break;
    case 'disputeWon': {
      await confirm(stripe, pi, 'pm_card_createDispute');
      // Stripe test mode: submitted evidence with winning_evidence is decided for the merchant a (scaled) moment later.
      await stripe.disputes.update(await openedDispute(mock, pi), { evidence: { uncategorized_text: 'winning_evidence' } });
      await waitForEvent(mock, pi, 'charge.dispute.funds_reinstated', 'dispute won');
      break;
    }
    case 'disputeLost':
      await confirm(stripe, pi, 'pm_card_createDispute');
      // Accepting the dispute closes it as lost at once.
      await stripe.disputes.close(await openedDispute(mock, pi));
      await waitForEvent(mock, pi, 'charge.dispute.closed', 'dispute lost');
      break;
    case 'refundFails': {
      await confirm(stripe, pi, 'pm_card_refundFail');
      const first = await stripe.refunds.create({ payment_intent: pi, amount: FAILING_REFUND_FIRST });
      const rest = await stripe.refunds.create({ payment_intent: pi });
      // Both start succeeded; the card network refuses them a (scaled) moment later.
      for (const refund of [first, rest]) {
        await waitFor(async () => mock.events().some((e) => e.type === 'refund.failed' && (e.data.object as { id?: string }).id === refund.id), `refund ${refund.id} failed`, 10000, 20);
      }
      break;
    }
    case 'cancel':
      await stripe.paymentIntents.cancel(pi);
      break;
    case 'manualCapture':
      await confirm(stripe, pi, 'pm_card_visa');
      await stripe.paymentIntents.capture(pi);
      break;
    case 'partialCapture':
      await confirm(stripe, pi, 'pm_card_visa');
      // The uncaptured rest is released; Stripe counts it in the charge's amount_refunded.
      await stripe.paymentIntents.capture(pi, { amount_to_capture: PARTIAL_CAPTURE.capture });
      await stripe.refunds.create({ payment_intent: pi, amount: PARTIAL_CAPTURE.firstRefund });
      await stripe.refunds.create({ payment_intent: pi });
      break;
    case 'voidAuthorization':
      await confirm(stripe, pi, 'pm_card_visa');
      await stripe.paymentIntents.cancel(pi);
      break;
    case 'authorizationExpiry':
      await confirm(stripe, pi, 'pm_card_visa');
      await waitForLapse(stripe, mock, pi);
      break;
  }
  return eventsFor(mock, pi);
}

/** Waits for the dispute the mock opens a (scaled) moment after a dispute test card's charge, as Stripe does; returns its id. */
async function openedDispute(mock: MockPsp, pi: string): Promise<string> {
  const created = await waitForEvent(mock, pi, 'charge.dispute.created', 'dispute opened');
  return (created.data.object as Stripe.Dispute).id;
}

/** Waits until the mock has emitted an event of `type` for `pi`; returns the first. */
async function waitForEvent(mock: MockPsp, pi: string, type: string, what: string): Promise<Stripe.Event> {
  return (await waitFor(async () => eventsFor(mock, pi).find((e) => e.type === type), `${what} (${type} for ${pi})`, 10000, 20)) as Stripe.Event;
}

/** Waits until the mock lets the authorization of `pi` lapse (charge.expired, then payment_intent.canceled). */
async function waitForLapse(stripe: Stripe, mock: MockPsp, pi: string): Promise<void> {
  const intent = await stripe.paymentIntents.retrieve(pi);
  if (intent.status !== 'requires_capture' || typeof intent.latest_charge !== 'string') {
    throw new Error(`authorizationExpiry: ${pi} is ${intent.status}, not an authorization (was the order created with captureMethod manual?)`);
  }
  const charge = await stripe.charges.retrieve(intent.latest_charge);
  const captureBefore = charge.payment_method_details?.card?.capture_before;
  if (!captureBefore) throw new Error(`authorizationExpiry: the charge of ${pi} has no capture_before`);
  // capture_before is in whole seconds; the mock's timer may fire up to a second after it.
  const waitMs = captureBefore * 1000 - Date.now() + 10000;
  if (waitMs > 120000) {
    throw new Error(`authorizationExpiry would wait ${Math.round(waitMs / 1000)} s for the capture window: start the mock with a timeScale that makes 7 days a few seconds`);
  }
  await waitFor(async () => eventsFor(mock, pi).some((e) => e.type === 'payment_intent.canceled'), `authorization of ${pi} lapsed`, waitMs, 50);
}

/** Every event the mock emitted that concerns PaymentIntent `pi` (its charges, refunds and disputes name it). */
export function eventsFor(mock: MockPsp, pi: string): Stripe.Event[] {
  return mock.events().filter((e) => {
    const o = e.data.object as unknown as { id?: string; payment_intent?: string | { id: string } | null };
    const owner = typeof o.payment_intent === 'string' ? o.payment_intent : o.payment_intent?.id;
    return o.id === pi || owner === pi;
  });
}

/**
 * What the charge says was captured and refunded of it. Stripe's
 * amount_refunded also counts what was never captured: the rest released by a
 * partial capture, and the whole of a voided or lapsed authorization.
 */
export function chargeFigures(charge: Stripe.Charge | null): { amountCaptured: number; amountRefunded: number } {
  if (!charge || !charge.captured) return { amountCaptured: 0, amountRefunded: 0 };
  return { amountCaptured: charge.amount_captured, amountRefunded: Math.max(0, charge.amount_refunded - (charge.amount - charge.amount_captured)) };
}

/** The PaymentIntent `pi` and its latest charge, as the PSP holds them now. */
export async function pspPayment(stripe: Stripe, pi: string): Promise<{ intent: Stripe.PaymentIntent; charge: Stripe.Charge | null }> {
  const intent = await stripe.paymentIntents.retrieve(pi);
  const chargeId = typeof intent.latest_charge === 'string' ? intent.latest_charge : intent.latest_charge?.id;
  return { intent, charge: chargeId ? await stripe.charges.retrieve(chargeId) : null };
}

/** Dispute statuses that are the end of it: only `lost` keeps the money from the merchant. */
const CLOSED_DISPUTE_STATUSES: readonly string[] = ['won', 'lost', 'warning_closed'];

/** The payment's dispute as the PSP holds it now (retrieved: listing would open a scheduled one early); null when none. */
export async function pspDispute(stripe: Stripe, mock: MockPsp, pi: string): Promise<Stripe.Dispute | null> {
  const opened = eventsFor(mock, pi).filter((e) => e.type.startsWith('charge.dispute.')).at(-1);
  return opened ? stripe.disputes.retrieve((opened.data.object as Stripe.Dispute).id) : null;
}

/**
 * The order status and refunded figure the PSP's current state implies. A
 * lost dispute is final; a won one (or a closed inquiry) leaves the status the
 * payment and its refunds imply, as if it had not been. The charge's
 * amount_refunded already leaves out refunds that failed.
 */
export async function pspTruth(stripe: Stripe, mock: MockPsp, pi: string): Promise<{ status: string; amountRefunded: number }> {
  const { intent, charge } = await pspPayment(stripe, pi);
  const { amountCaptured, amountRefunded } = chargeFigures(charge);
  const dispute = await pspDispute(stripe, mock, pi);
  let status: string;
  if (dispute?.status === 'lost') status = 'dispute_lost';
  else if (dispute && !CLOSED_DISPUTE_STATUSES.includes(dispute.status)) status = 'disputed';
  // The PSP cancels with `automatic` when an authorization lapses; Settle cancels with `abandoned` when an order was left unpaid.
  else if (intent.status === 'canceled') status = intent.cancellation_reason === 'automatic' || intent.cancellation_reason === 'abandoned' ? 'expired' : 'canceled';
  else if (amountCaptured > 0 && amountRefunded >= amountCaptured) status = 'refunded';
  else if (amountRefunded > 0) status = 'partially_refunded';
  else if (intent.status === 'succeeded') status = 'paid';
  else if (intent.status === 'requires_capture') status = 'authorized';
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
