/**
 * The order status machine, as data. Pure: no I/O, so it is unit-tested
 * exhaustively and checked at load time (every state known and reachable).
 *
 * A webhook that asks for a transition not in this table is stale, not an
 * error: it is recorded and changes nothing (see payment-state.ts).
 */
export const ORDER_STATUSES = [
  'pending_payment',
  'requires_action',
  'processing',
  'authorized',
  'payment_failed',
  'paid',
  'partially_refunded',
  'refunded',
  'disputed',
  'dispute_lost',
  'canceled',
  'expired',
  'needs_review',
] as const;

export type OrderStatus = (typeof ORDER_STATUSES)[number];

export const INITIAL_STATUS: OrderStatus = 'pending_payment';

// needs_review is reachable from everywhere: money the order did not ask for can arrive at any time.
const UNPAID_EXITS: OrderStatus[] = ['authorized', 'paid', 'canceled', 'expired', 'needs_review'];

export const TRANSITIONS: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = {
  pending_payment: ['requires_action', 'processing', 'payment_failed', ...UNPAID_EXITS],
  requires_action: ['processing', 'payment_failed', ...UNPAID_EXITS],
  // A later attempt after a failure may need 3-D Secure, go through a slow method, or simply succeed.
  payment_failed: ['requires_action', 'processing', ...UNPAID_EXITS],
  // Slow methods (SEPA) can still fail after processing.
  processing: ['payment_failed', ...UNPAID_EXITS],
  // Funds held (manual capture): captured, voided, or lapsed at the end of the capture window.
  authorized: ['paid', 'canceled', 'expired', 'needs_review'],
  // A refund that fails after it succeeded lowers the refunded sum, and the status with it.
  paid: ['partially_refunded', 'refunded', 'disputed', 'dispute_lost', 'needs_review'],
  partially_refunded: ['refunded', 'paid', 'disputed', 'dispute_lost', 'needs_review'],
  refunded: ['partially_refunded', 'paid', 'disputed', 'dispute_lost', 'needs_review'],
  // A dispute won returns the order to the status it had before; lost is final (but for money it did not ask for).
  disputed: ['paid', 'partially_refunded', 'refunded', 'dispute_lost', 'needs_review'],
  dispute_lost: ['needs_review'],
  // Money taken after a cancel or an expiry is for a person to look at.
  canceled: ['needs_review'],
  expired: ['needs_review'],
  needs_review: [],
};

/**
 * How far along an order is. A transition that raises the rank is progress and
 * may be applied whatever the event's age; one that keeps or lowers it
 * (requires_action <-> payment_failed, processing -> payment_failed) is only
 * safe when the event is known to be newer than what was applied.
 */
export const RANK: Readonly<Record<OrderStatus, number>> = {
  pending_payment: 0,
  requires_action: 1,
  payment_failed: 1,
  processing: 2,
  authorized: 3,
  paid: 4,
  canceled: 4,
  expired: 4,
  partially_refunded: 5,
  refunded: 6,
  disputed: 7,
  dispute_lost: 8,
  needs_review: 9,
};

export const UNPAID_STATUSES: readonly OrderStatus[] = ['pending_payment', 'requires_action', 'processing', 'payment_failed'];
/**
 * Unpaid and not in flight: what the expiry sweep cancels once ORDER_PAYMENT_TIMEOUT_MINUTES
 * have passed (a processing payment is settling and cannot be canceled). Keep in step with
 * the partial index orders_unpaid_created_idx (a service-tier test compares the two).
 */
export const EXPIRABLE_STATUSES: readonly OrderStatus[] = ['pending_payment', 'requires_action', 'payment_failed'];
/** Paid, then refunded or disputed: payment facts never move an order back out of these (only refunds and disputes do). */
export const AFTER_PAYMENT_STATUSES: readonly OrderStatus[] = ['partially_refunded', 'refunded', 'disputed', 'dispute_lost'];
/** The order no longer takes money: a payment that succeeds now is unexpected. */
export const CLOSED_UNPAID_STATUSES: readonly OrderStatus[] = ['canceled', 'expired'];
export const REFUNDABLE_STATUSES: readonly OrderStatus[] = ['paid', 'partially_refunded'];

export function isOrderStatus(value: string): value is OrderStatus {
  return (ORDER_STATUSES as readonly string[]).includes(value);
}

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** Throws when the table names an unknown state or leaves a state unreachable; run at module load. */
export function validateTransitionTable(table: Readonly<Record<string, readonly string[]>>, initial: string): void {
  const known = new Set(Object.keys(table));
  for (const [from, tos] of Object.entries(table)) {
    for (const to of tos) {
      if (!known.has(to)) throw new Error(`Order status machine: "${from}" -> unknown status "${to}"`);
    }
  }
  const reached = new Set([initial]);
  const queue = [initial];
  while (queue.length > 0) {
    for (const to of table[queue.shift() as string] ?? []) {
      if (!reached.has(to)) {
        reached.add(to);
        queue.push(to);
      }
    }
  }
  const unreachable = [...known].filter((s) => !reached.has(s));
  if (unreachable.length > 0) throw new Error(`Order status machine: unreachable ${unreachable.join(', ')}`);
}

validateTransitionTable(TRANSITIONS, INITIAL_STATUS);
