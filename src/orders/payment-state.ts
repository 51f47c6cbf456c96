import type Stripe from 'stripe';
import { CLOSED_UNPAID_STATUSES, OrderStatus, RANK, UNPAID_STATUSES, canTransition } from './order-status';

/**
 * How PSP facts move an order, as one pure reducer: (what we hold, what the
 * PSP said) -> decision. No I/O, so it is tested over every permutation of the
 * event sequences a real flow produces (payment-state.spec.ts).
 *
 * Ordering rules, since webhooks arrive late, twice and out of order:
 * - a transition that raises the order's RANK is progress and applies whatever
 *   the event's age (a success seen after a newer failure still means paid);
 * - a sideways or lowering transition applies only when the event is strictly
 *   newer than the newest one applied; an older one is stale;
 * - same-second events cannot be ordered by `created`, so the caller fetches
 *   the PaymentIntent and feeds its current state back as an authoritative fact.
 */

/** What we hold for the order and its payment, read under the order row lock. */
export interface HeldState {
  orderId: string;
  orderStatus: OrderStatus;
  orderAmount: number;
  orderCurrency: string;
  amountRefunded: number;
  /** What the PSP captured (less than the amount after a partial capture); null until captured. */
  amountCaptured: number | null;
  captureMethod: 'automatic' | 'manual';
  /** `created` of the newest event applied, epoch seconds; 0 when none. */
  lastEventCreated: number;
}

/** A manual-capture payment's figures, as the PSP reports them. */
export interface CaptureFigures {
  amountCapturable: number;
  /** null until the money is captured. */
  amountCaptured: number | null;
  /** End of the capture window, epoch seconds; undefined when this fact does not say (a PaymentIntent without its charge). */
  captureBefore?: number | null;
}

/** A PaymentIntent's (or its charge's) outcome, from an event or from retrieving it. */
export interface PaymentFact {
  kind: 'payment';
  /** The order status the PSP state implies; null when it implies none (created, awaiting a method). */
  target: OrderStatus | null;
  /** The PaymentIntent status to store (verbatim from the PSP when it said so). */
  intentStatus: string;
  amount?: number;
  currency?: string;
  /** metadata.order_id when the object carries one. */
  orderIdInMetadata?: string;
  created: number;
  /** The PaymentIntent as retrieved now: the current truth, not an event that may be old. */
  authoritative?: boolean;
  capture?: CaptureFigures;
  /** Said by a Checkout Session, which reads a held authorization as paid too. */
  fromSession?: boolean;
}

/** The PSP's own total of refunded money for the charge (never an increment). */
export interface RefundFact {
  kind: 'refund';
  amountRefunded: number;
  created: number;
}

export interface DisputeFact {
  kind: 'dispute';
  disputeId: string;
  created: number;
}

export type PspFact = PaymentFact | RefundFact | DisputeFact;

export type Outcome = 'applied' | 'stale' | 'noop' | 'needs_review';

export interface Decision {
  outcome: Outcome;
  /** Order statuses to step through, in order (each one history entry); empty when nothing changes. */
  steps: OrderStatus[];
  amountRefunded: number;
  /** The PaymentIntent status to store, when it changes. */
  intentStatus?: string;
  lastEventCreated: number;
  /** The event alone cannot decide (same second as what was applied): retrieve the PaymentIntent and decide with that. */
  needsPspState: boolean;
  reason: string;
  /** The payment's capture figures to store, when this fact is current enough to set them. */
  capture?: CaptureFigures;
  /** Money was taken that the order did not ask for (after it was canceled or expired): list the payment as unexpected. */
  unexpectedPayment?: boolean;
}

/** What the order status says about the PaymentIntent, for facts (charges, refunds) that do not name its status. */
const INTENT_STATUS_FOR: Partial<Record<OrderStatus, string>> = {
  requires_action: 'requires_action',
  processing: 'processing',
  payment_failed: 'requires_payment_method',
  authorized: 'requires_capture',
  paid: 'succeeded',
  canceled: 'canceled',
};

/** The shortest allowed path to `target`: directly, or through paid (a refund or dispute seen before the success). */
function pathTo(from: OrderStatus, target: OrderStatus): OrderStatus[] {
  if (from === target) return [];
  if (canTransition(from, target)) return [target];
  if (target !== 'paid' && UNPAID_STATUSES.includes(from) && canTransition(from, 'paid') && canTransition('paid', target)) return ['paid', target];
  return [];
}

function mismatch(held: HeldState, fact: PaymentFact): string | null {
  if (fact.amount !== undefined && fact.amount !== held.orderAmount) return `amount ${fact.amount} differs from the order's ${held.orderAmount}`;
  if (fact.currency !== undefined && fact.currency !== held.orderCurrency) return `currency ${fact.currency} differs from the order's ${held.orderCurrency}`;
  if (fact.orderIdInMetadata !== undefined && fact.orderIdInMetadata !== held.orderId) return `metadata.order_id ${fact.orderIdInMetadata} is not this order`;
  return null;
}

/** The pure reducer: what one PSP fact does to the order we hold. */
export function decide(held: HeldState, fact: PspFact): Decision {
  const lastEventCreated = fact.kind === 'payment' && fact.authoritative ? held.lastEventCreated : Math.max(held.lastEventCreated, fact.created);
  const base = { amountRefunded: held.amountRefunded, lastEventCreated, needsPspState: false };
  const none = (outcome: Outcome, reason: string): Decision => ({ ...base, outcome, steps: [], reason });

  if (fact.kind === 'payment') {
    // A session of a manual-capture order is "paid" once the funds are held: that is an authorization until captured.
    if (fact.fromSession && fact.target === 'paid' && held.captureMethod === 'manual' && held.amountCaptured === null) fact = { ...fact, target: 'authorized', intentStatus: 'requires_capture' };
    const problem = mismatch(held, fact);
    if (problem) {
      const steps = pathTo(held.orderStatus, 'needs_review');
      return steps.length ? { ...base, outcome: 'needs_review', steps, reason: problem } : none('noop', problem);
    }
    if (fact.target === 'paid' && CLOSED_UNPAID_STATUSES.includes(held.orderStatus)) {
      // A canceled PaymentIntent cannot succeed at the PSP, so this is money taken after the order closed.
      return { ...base, outcome: 'needs_review', steps: ['needs_review'], unexpectedPayment: true, intentStatus: fact.intentStatus, reason: `payment succeeded after the order was ${held.orderStatus}` };
    }
    if (fact.target === null || fact.target === held.orderStatus) {
      // Same state: still store the PSP's own status (and figures) when it is the current truth or says the same.
      const current = fact.authoritative || fact.target === held.orderStatus;
      return { ...none('noop', 'no change'), intentStatus: fact.authoritative ? fact.intentStatus : undefined, capture: current ? fact.capture : undefined };
    }
    const steps = pathTo(held.orderStatus, fact.target);
    if (steps.length === 0) return none('stale', `${held.orderStatus} cannot become ${fact.target}`);
    const raises = RANK[fact.target] > RANK[held.orderStatus];
    if (!raises && !fact.authoritative) {
      if (fact.created < held.lastEventCreated) return none('stale', `older than the last applied event`);
      if (fact.created === held.lastEventCreated) return { ...none('noop', 'same second as the last applied event'), needsPspState: true };
    }
    return { ...base, outcome: 'applied', steps, intentStatus: fact.intentStatus, reason: fact.authoritative ? 'PSP state' : 'event', capture: fact.capture };
  }

  if (fact.kind === 'refund') {
    const amountRefunded = Math.max(held.amountRefunded, fact.amountRefunded);
    // After a partial capture only the captured sum can come back.
    const refundable = held.amountCaptured ?? held.orderAmount;
    const target: OrderStatus | null = amountRefunded >= refundable ? 'refunded' : amountRefunded > 0 ? 'partially_refunded' : null;
    const steps = target ? pathTo(held.orderStatus, target) : [];
    const changed = steps.length > 0 || amountRefunded !== held.amountRefunded;
    return {
      ...base,
      amountRefunded,
      outcome: changed ? 'applied' : 'noop',
      steps,
      intentStatus: steps.includes('paid') ? 'succeeded' : undefined,
      reason: `refunded ${amountRefunded} of ${refundable}`,
    };
  }

  const steps = pathTo(held.orderStatus, 'disputed');
  return {
    ...base,
    outcome: steps.length ? 'applied' : 'noop',
    steps,
    intentStatus: steps.includes('paid') ? 'succeeded' : undefined,
    reason: `dispute ${fact.disputeId}`,
  };
}

/** Cancellation reasons that mean the order expired rather than was canceled by someone. */
const LAPSED_REASONS: readonly string[] = ['automatic', 'expired', 'abandoned'];

/**
 * A payment that names the order (metadata.order_id) but is not its own
 * PaymentIntent: a second checkout, a charge made in the dashboard. Money it
 * took is for a person to look at, whatever the order's status; anything
 * short of success changes nothing.
 */
export function decideForeign(held: HeldState, fact: PaymentFact, paymentId: string): Decision {
  const base = { amountRefunded: held.amountRefunded, lastEventCreated: held.lastEventCreated, needsPspState: false };
  if (fact.target !== 'paid') return { ...base, outcome: 'noop', steps: [], reason: `another payment ${paymentId} is ${fact.intentStatus}` };
  const reason = `payment ${paymentId} took ${fact.amount ?? 'an unknown amount'} ${fact.currency ?? ''} but is not this order's own PaymentIntent`;
  return { ...base, outcome: 'needs_review', steps: pathTo(held.orderStatus, 'needs_review'), unexpectedPayment: true, reason };
}

/** What a PaymentIntent's status means for the order. */
export function targetForIntent(intent: Pick<Stripe.PaymentIntent, 'status' | 'last_payment_error' | 'cancellation_reason'>): OrderStatus | null {
  switch (intent.status) {
    case 'succeeded':
      return 'paid';
    case 'canceled':
      // The capture window ended (automatic), or Settle gave up on an unpaid order (abandoned).
      return intent.cancellation_reason && LAPSED_REASONS.includes(intent.cancellation_reason) ? 'expired' : 'canceled';
    case 'requires_capture':
      return 'authorized';
    case 'processing':
      return 'processing';
    case 'requires_action':
      return 'requires_action';
    case 'requires_payment_method':
      // Back to "needs a method" after an attempt: that attempt failed.
      return intent.last_payment_error ? 'payment_failed' : null;
    default:
      return null;
  }
}

/** The facts of a retrieved PaymentIntent: the current truth. */
export function factFromIntent(intent: Stripe.PaymentIntent, created: number, authoritative = true): PaymentFact {
  return {
    kind: 'payment',
    target: targetForIntent(intent),
    intentStatus: intent.status,
    amount: intent.amount,
    currency: intent.currency,
    orderIdInMetadata: intent.metadata?.order_id || undefined,
    created,
    ...(authoritative ? { authoritative: true } : {}),
    capture: captureOfIntent(intent),
  };
}

/** The capture figures of a PaymentIntent; the window's end only when its charge is expanded (latest_charge). */
export function captureOfIntent(intent: Stripe.PaymentIntent): CaptureFigures {
  const charge = typeof intent.latest_charge === 'object' && intent.latest_charge ? intent.latest_charge : undefined;
  return {
    amountCapturable: intent.amount_capturable ?? 0,
    amountCaptured: intent.status === 'succeeded' ? (intent.amount_received ?? intent.amount) : null,
    ...(charge ? { captureBefore: charge.payment_method_details?.card?.capture_before ?? null } : {}),
  };
}

/** The event, read: which PaymentIntent it concerns and what it says; null for a type we do not act on. */
export interface ReadEvent {
  paymentIntentId: string | null;
  /** Set when only the charge is named (some disputes): the caller resolves its PaymentIntent. */
  chargeId?: string;
  /** The Checkout Session the event concerns (its PaymentIntent, when it has one yet, is paymentIntentId). */
  checkoutSessionId?: string;
  fact: PspFact;
  /** A refund object to record in the refunds table. */
  refund?: { id: string; amount: number; status: string };
}

const PAYMENT_INTENT_TARGETS: Record<string, true> = {
  'payment_intent.created': true,
  'payment_intent.requires_action': true,
  'payment_intent.processing': true,
  'payment_intent.payment_failed': true,
  'payment_intent.succeeded': true,
  'payment_intent.canceled': true,
  'payment_intent.amount_capturable_updated': true,
  'payment_intent.partially_funded': true,
};

const CHARGE_TARGETS: Record<string, OrderStatus> = {
  'charge.succeeded': 'paid',
  'charge.captured': 'paid',
  'charge.failed': 'payment_failed',
  'charge.pending': 'processing',
};

function idOf(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { id?: unknown }).id === 'string') return (value as { id: string }).id;
  return null;
}

/** Reads a Stripe event into facts; pure. */
export function readEvent(event: Pick<Stripe.Event, 'type' | 'created' | 'data'>): ReadEvent | null {
  const object = event.data.object as unknown as Record<string, unknown>;
  const created = event.created;
  if (PAYMENT_INTENT_TARGETS[event.type]) {
    const intent = object as unknown as Stripe.PaymentIntent;
    // An event's snapshot may be old: the same facts as a retrieved intent, but not authoritative.
    return { paymentIntentId: intent.id, fact: factFromIntent(intent, created, false) };
  }
  const chargeTarget = CHARGE_TARGETS[event.type];
  if (chargeTarget) {
    const charge = object as unknown as Stripe.Charge;
    // A succeeded charge not captured yet is an authorization (manual capture), not money taken.
    const target: OrderStatus = chargeTarget === 'paid' && charge.captured === false ? 'authorized' : chargeTarget;
    return {
      paymentIntentId: idOf(charge.payment_intent),
      fact: {
        kind: 'payment',
        target,
        intentStatus: INTENT_STATUS_FOR[target] as string,
        amount: charge.amount,
        currency: charge.currency,
        orderIdInMetadata: charge.metadata?.order_id || undefined,
        created,
        capture: target === 'authorized' || target === 'paid' ? captureOfCharge(charge, target) : undefined,
      },
    };
  }
  if (event.type.startsWith('checkout.session.')) {
    const session = object as unknown as Stripe.Checkout.Session;
    const fact = factFromSession(session, event.type, created);
    return fact ? { paymentIntentId: idOf(session.payment_intent), checkoutSessionId: session.id, fact } : null;
  }
  if (event.type === 'charge.refunded') {
    const charge = object as unknown as Stripe.Charge;
    return { paymentIntentId: idOf(charge.payment_intent), fact: { kind: 'refund', amountRefunded: refundedOfCaptured(charge), created } };
  }
  if (event.type.startsWith('refund.') || event.type === 'charge.refund.updated') {
    const refund = object as unknown as Stripe.Refund;
    // A refund alone does not carry the charge's total: the caller sums the succeeded refunds it holds.
    return {
      paymentIntentId: idOf(refund.payment_intent),
      chargeId: idOf(refund.charge) ?? undefined,
      fact: { kind: 'refund', amountRefunded: 0, created },
      refund: { id: refund.id, amount: refund.amount, status: refund.status ?? 'pending' },
    };
  }
  if (event.type.startsWith('charge.dispute.')) {
    const dispute = object as unknown as Stripe.Dispute;
    return {
      paymentIntentId: idOf(dispute.payment_intent),
      chargeId: idOf(dispute.charge) ?? undefined,
      fact: { kind: 'dispute', disputeId: dispute.id, created },
    };
  }
  return null;
}

/**
 * What a Checkout Session says about the order. Completed and paid is paid;
 * completed and unpaid waits for the delayed method's result (async_payment_*);
 * expired means the order expired. Its PaymentIntent's own events say the same
 * in more detail and converge through the same machine. `type` is the event's
 * type, or undefined for a session as retrieved (the current truth).
 */
export function factFromSession(session: Stripe.Checkout.Session, type: string | undefined, created: number): PaymentFact | null {
  let target: OrderStatus | null;
  if (type === 'checkout.session.async_payment_failed') target = 'payment_failed';
  else if (session.status === 'expired' || type === 'checkout.session.expired') target = 'expired';
  else if (session.payment_status === 'paid' || type === 'checkout.session.async_payment_succeeded') target = 'paid';
  else if (type === undefined || SESSION_EVENTS.includes(type)) target = null;
  else return null;
  const intentStatus = target === 'expired' ? 'expired' : target === 'paid' ? 'succeeded' : target === 'payment_failed' ? 'requires_payment_method' : session.status ?? 'open';
  return {
    kind: 'payment',
    target,
    intentStatus,
    amount: session.amount_total ?? undefined,
    currency: session.currency ?? undefined,
    orderIdInMetadata: session.metadata?.order_id || session.client_reference_id || undefined,
    created,
    ...(type === undefined ? { authoritative: true } : {}),
    fromSession: true,
  };
}

const SESSION_EVENTS = [
  'checkout.session.completed',
  'checkout.session.async_payment_succeeded',
  'checkout.session.async_payment_failed',
  'checkout.session.expired',
];

/**
 * What was given back of the captured money. Stripe counts a released
 * authorization (the uncaptured rest after a partial capture, or all of it
 * after a void) in the charge's amount_refunded; that money was never taken.
 */
export function refundedOfCaptured(charge: Pick<Stripe.Charge, 'amount' | 'amount_captured' | 'amount_refunded' | 'captured'>): number {
  const released = charge.amount_captured !== undefined && charge.amount_captured !== null ? charge.amount - charge.amount_captured : 0;
  return Math.max(0, (charge.amount_refunded ?? 0) - (charge.captured === false ? charge.amount : released));
}

function captureOfCharge(charge: Stripe.Charge, target: OrderStatus): CaptureFigures {
  const captureBefore = charge.payment_method_details?.card?.capture_before ?? null;
  if (target === 'authorized') return { amountCapturable: charge.amount - (charge.amount_refunded ?? 0), amountCaptured: null, captureBefore };
  return { amountCapturable: 0, amountCaptured: charge.amount_captured ?? charge.amount, captureBefore };
}

/** Refund statuses that are final: a late `pending` event never replaces them. */
const FINAL_REFUND_STATUSES = ['succeeded', 'failed', 'canceled'];

/** The refund status to keep when an event reports `next` for a refund we hold as `held`. */
export function nextRefundStatus(held: string | undefined, next: string): string {
  if (held !== undefined && FINAL_REFUND_STATUSES.includes(held) && !FINAL_REFUND_STATUSES.includes(next)) return held;
  return next;
}
