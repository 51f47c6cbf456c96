import type Stripe from 'stripe';
import { AFTER_PAYMENT_STATUSES, CLOSED_UNPAID_STATUSES, OrderStatus, RANK, UNPAID_STATUSES, canTransition } from './order-status';

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
  /** The order's dispute as last recorded; null when none. */
  dispute: DisputeRecord | null;
  /** Where a won dispute returns the order (its status when the dispute came). */
  statusBeforeDispute: OrderStatus | null;
}

/** A dispute as the order view shows it, with the age of the event that said so. */
export interface DisputeRecord {
  id: string;
  status: string;
  reason: string | null;
  amount: number;
  /** Epoch seconds; null when the PSP gives none. */
  evidenceDueBy: number | null;
  eventCreated: number;
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
  /** A refund held as succeeded turned failed (or canceled) with this fact: this much went back to the merchant. */
  failed?: number;
  /** What the charge had captured, when the fact comes with the charge. */
  amountCaptured?: number;
}

export interface DisputeFact {
  kind: 'dispute';
  disputeId: string;
  created: number;
  /** Stripe's dispute status (needs_response, under_review, won, lost, warning_*). */
  status: string;
  reason: string | null;
  amount: number;
  evidenceDueBy: number | null;
  /** The dispute as the PSP answered it just now (evidence submitted, accepted). */
  authoritative?: boolean;
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
  /** The dispute record to store, when it changes. */
  dispute?: DisputeRecord;
  /** Where a won dispute will return the order, when it changes. */
  statusBeforeDispute?: OrderStatus;
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
  if (target !== 'paid' && (UNPAID_STATUSES.includes(from) || from === 'authorized') && canTransition(from, 'paid') && canTransition('paid', target)) return ['paid', target];
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
    // What was captured is learnt once, whenever it comes: refunds seen before the capture are measured against it then.
    const learnsCapture = fact.capture?.amountCaptured != null && held.amountCaptured === null ? fact.capture : undefined;
    if (fact.target !== null && AFTER_PAYMENT_STATUSES.includes(held.orderStatus) && RANK[fact.target] < RANK[held.orderStatus]) {
      // A payment fact never undoes a refund or a dispute: only refund and dispute facts move the order back.
      if (!learnsCapture) return none('stale', `a payment fact (${fact.target}) does not move a ${held.orderStatus} order`);
      const steps = refundSteps(held, held.orderStatus, learnsCapture.amountCaptured);
      return { ...base, outcome: steps.length ? 'applied' : 'noop', steps, capture: learnsCapture, reason: `captured ${learnsCapture.amountCaptured}` };
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
    // Refunds applied before the payment was (webhooks out of order): carry on from paid to what they make it.
    if (steps.at(-1) === 'paid') steps.push(...refundSteps(held, 'paid', fact.capture?.amountCaptured ?? held.amountCaptured));
    return { ...base, outcome: 'applied', steps, intentStatus: fact.intentStatus, reason: fact.authoritative ? 'PSP state' : 'event', capture: fact.capture };
  }

  if (fact.kind === 'refund') return decideRefund(held, fact, base);
  return decideDispute(held, fact, base);
}

const DISPUTE_FINAL_STATUSES = ['won', 'lost', 'warning_closed', 'prevented'];

/** From `at` (paid or partially refunded), the steps the refunded sum held calls for, measured against what was captured. */
function refundSteps(held: HeldState, at: OrderStatus, captured: number | null): OrderStatus[] {
  if (held.amountRefunded <= 0 || (at !== 'paid' && at !== 'partially_refunded')) return [];
  const target: OrderStatus = held.amountRefunded >= (captured ?? held.orderAmount) ? 'refunded' : 'partially_refunded';
  return target === at ? [] : pathTo(at, target);
}

function decideRefund(held: HeldState, fact: RefundFact, base: Pick<Decision, 'amountRefunded' | 'lastEventCreated' | 'needsPspState'>): Decision {
  // Never below the PSP's figure; lower than what we held only by a refund that failed now.
  const floor = fact.failed ? held.amountRefunded - fact.failed : held.amountRefunded;
  const amountRefunded = Math.max(fact.amountRefunded, floor, 0);
  // After a partial capture only the captured sum can come back (the charge's snapshot may say what was captured before its own event came).
  const learnt = fact.amountCaptured !== undefined && held.amountCaptured === null ? fact.amountCaptured : undefined;
  const refundable = learnt ?? held.amountCaptured ?? held.orderAmount;
  let target: OrderStatus | null = amountRefunded >= refundable ? 'refunded' : amountRefunded > 0 ? 'partially_refunded' : null;
  if (target === null && (held.orderStatus === 'partially_refunded' || held.orderStatus === 'refunded' || held.orderStatus === 'disputed')) target = 'paid';
  const reason = `refunded ${amountRefunded} of ${refundable}${fact.failed ? ` (a refund of ${fact.failed} failed)` : ''}`;
  if (held.orderStatus === 'disputed' || held.orderStatus === 'dispute_lost') {
    // The dispute's outcome decides the status; a won dispute returns to what the refunds make it.
    const changed = amountRefunded !== held.amountRefunded;
    return {
      ...base,
      amountRefunded,
      outcome: changed ? 'applied' : 'noop',
      steps: [],
      reason,
      ...(held.orderStatus === 'disputed' && target && target !== held.statusBeforeDispute ? { statusBeforeDispute: target } : {}),
    };
  }
  // A refund of an order not seen paid yet proves the payment: through paid (its own late fact then changes nothing).
  const steps = target ? pathTo(held.orderStatus, target) : [];
  const changed = steps.length > 0 || amountRefunded !== held.amountRefunded || learnt !== undefined;
  return {
    ...base,
    amountRefunded,
    outcome: changed ? 'applied' : 'noop',
    steps,
    intentStatus: steps.includes('paid') && (UNPAID_STATUSES.includes(held.orderStatus) || held.orderStatus === 'authorized') ? 'succeeded' : undefined,
    reason,
    ...(learnt !== undefined ? { capture: { amountCapturable: 0, amountCaptured: learnt } } : {}),
  };
}

/**
 * Disputes, in any order: a closed outcome (won, lost) is final and never
 * replaced; among open statuses the newest event wins. The order follows the
 * dispute: open → disputed, lost → dispute_lost, won → back to where it was.
 */
function decideDispute(held: HeldState, fact: DisputeFact, base: Pick<Decision, 'amountRefunded' | 'lastEventCreated' | 'needsPspState'>): Decision {
  const incoming: DisputeRecord = {
    id: fact.disputeId,
    status: fact.status,
    reason: fact.reason,
    amount: fact.amount,
    evidenceDueBy: fact.evidenceDueBy,
    eventCreated: fact.authoritative ? Math.max(fact.created, held.dispute?.eventCreated ?? 0) : fact.created,
  };
  const recorded = held.dispute;
  const recordedFinal = recorded !== null && DISPUTE_FINAL_STATUSES.includes(recorded.status);
  const take = recorded === null || (!recordedFinal && (DISPUTE_FINAL_STATUSES.includes(incoming.status) || fact.authoritative === true || incoming.eventCreated >= recorded.eventCreated));
  const current = take ? incoming : recorded;
  const recordChanged = take && JSON.stringify(incoming) !== JSON.stringify(recorded);

  let target: OrderStatus | null;
  if (current.status === 'lost') target = 'dispute_lost';
  else if (DISPUTE_FINAL_STATUSES.includes(current.status)) {
    target = held.orderStatus === 'disputed' ? (held.statusBeforeDispute ?? 'paid') : UNPAID_STATUSES.includes(held.orderStatus) ? 'paid' : null;
  } else target = 'disputed';
  const steps = target ? pathTo(held.orderStatus, target) : [];
  // Entering the dispute: remember where a win returns to (paid when the success was not seen yet).
  const entering = steps.find((s) => s === 'disputed' || s === 'dispute_lost') && held.orderStatus !== 'disputed';
  const before = entering ? (steps.includes('paid') ? 'paid' : held.orderStatus) : undefined;
  return {
    ...base,
    outcome: steps.length || recordChanged ? 'applied' : 'noop',
    steps,
    intentStatus: steps.includes('paid') && UNPAID_STATUSES.includes(held.orderStatus) ? 'succeeded' : undefined,
    reason: `dispute ${current.id} ${current.status}${current.reason ? ` (${current.reason})` : ''}`,
    ...(recordChanged ? { dispute: current } : {}),
    ...(before ? { statusBeforeDispute: before } : {}),
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
  /** The charge's refunds as it listed them, to record too. */
  refunds?: Array<{ id: string; amount: number; status: string }>;
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
    // The charge's own list (when the API version includes it) records each refund's status: a ledger a failure can lower.
    const refunds = (charge.refunds?.data ?? []).map((r) => ({ id: r.id, amount: r.amount, status: r.status ?? 'pending' }));
    return {
      paymentIntentId: idOf(charge.payment_intent),
      fact: {
        kind: 'refund',
        amountRefunded: refundedOfCaptured(charge),
        created,
        ...(charge.captured && typeof charge.amount_captured === 'number' ? { amountCaptured: charge.amount_captured } : {}),
      },
      ...(refunds.length > 0 ? { refunds } : {}),
    };
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
    return { paymentIntentId: idOf(dispute.payment_intent), chargeId: idOf(dispute.charge) ?? undefined, fact: factFromDispute(dispute, created) };
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

/** A refund goes pending → succeeded → (failed, when the card network refuses it later); failed and canceled are the end. */
const REFUND_STATUS_ORDER: Record<string, number> = { pending: 0, requires_action: 0, succeeded: 1, failed: 2, canceled: 2 };

/** The refund status to keep when an event (perhaps old) reports `next` for a refund we hold as `held`: never a step back. */
export function nextRefundStatus(held: string | undefined, next: string): string {
  if (held === undefined) return next;
  return (REFUND_STATUS_ORDER[next] ?? 0) >= (REFUND_STATUS_ORDER[held] ?? 0) ? next : held;
}

/** What a dispute object says. */
export function factFromDispute(dispute: Stripe.Dispute, created: number, authoritative = false): DisputeFact {
  return {
    kind: 'dispute',
    disputeId: dispute.id,
    created,
    status: dispute.status ?? 'needs_response',
    reason: dispute.reason ?? null,
    amount: dispute.amount ?? 0,
    evidenceDueBy: dispute.evidence_details?.due_by ?? null,
    ...(authoritative ? { authoritative: true } : {}),
  };
}
