import type Stripe from 'stripe';
import { EventLog } from './events';
import { IdempotencyStore } from './idempotency';
import { PspState } from './psp-state';
import { WebhookDelivery } from './webhook-delivery';

/** Stripe forgets an idempotency key 24 hours after its first use. */
export const IDEMPOTENCY_KEY_TTL_MS = 24 * 60 * 60 * 1000;
/** Stripe's Events API keeps 30 days of events. */
export const EVENT_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;

/** PaymentIntents in these states still have a change coming (a capture window, a settlement), so they are kept. */
const OPEN_STATUSES: ReadonlySet<Stripe.PaymentIntent.Status> = new Set(['requires_capture', 'processing']);

export interface RetentionCounts {
  idempotencyKeys: number;
  events: number;
  deliveryRecords: number;
  paymentIntents: number;
  charges: number;
  refunds: number;
  disputes: number;
  paymentMethods: number;
  checkoutSessions: number;
}

/**
 * Keeps the mock's memory bounded the way Stripe bounds what it shows:
 * idempotency keys expire 24 hours after first use, events after 30 days
 * (both times `timeScale`). Payment objects are not kept for ever either: a
 * PaymentIntent older than the event window with nothing still to happen is
 * forgotten with its charges, refunds, disputes and its unattached
 * PaymentMethod (Stripe keeps them; a mock that must run for days cannot).
 * Customers are kept. The sweep timer never holds the process open.
 */
export class Retention {
  readonly idempotencyTtlMs: number;
  readonly eventRetentionMs: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    timeScale: number,
    private readonly parts: {
      idempotency: IdempotencyStore;
      events: EventLog;
      delivery: WebhookDelivery;
      state: PspState;
      /** Forgets finished Checkout Sessions created before the cutoff (unix seconds); returns how many. */
      checkout?: { prune(cutoff: number): number };
    },
  ) {
    this.idempotencyTtlMs = IDEMPOTENCY_KEY_TTL_MS * timeScale;
    this.eventRetentionMs = EVENT_RETENTION_MS * timeScale;
  }

  /** Idempotency keys first used before this instant (ms) have expired. */
  keysNotBefore(now = Date.now()): number {
    return now - this.idempotencyTtlMs;
  }

  /** Sweeps every tenth of the shorter window, at least every 10 ms and at most every minute. */
  start(): void {
    if (this.timer) return;
    const every = Math.min(60_000, Math.max(10, Math.min(this.idempotencyTtlMs, this.eventRetentionMs) / 10));
    this.timer = setInterval(() => this.sweep(), every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Forgets what is past its window; returns what was removed. */
  sweep(now = Date.now()): RetentionCounts {
    const { idempotency, events, delivery, state } = this.parts;
    const idempotencyKeys = idempotency.prune(this.keysNotBefore(now));
    const removedEvents = events.prune(now - this.eventRetentionMs);
    for (const event of removedEvents) delivery.forget(event.id);
    const cutoff = Math.floor((now - this.eventRetentionMs) / 1000);
    const objects = pruneObjects(state, cutoff);
    const checkoutSessions = this.parts.checkout?.prune(cutoff) ?? 0;
    return { idempotencyKeys, events: removedEvents.length, deliveryRecords: removedEvents.length, ...objects, checkoutSessions };
  }
}

/**
 * Forgets payment objects created before `cutoff` (unix seconds) whose
 * PaymentIntent has nothing still to happen. Maps keep insertion order, which
 * is creation order, so each walk stops at the first young object.
 */
function pruneObjects(state: PspState, cutoff: number): Omit<RetentionCounts, 'idempotencyKeys' | 'events' | 'deliveryRecords' | 'checkoutSessions'> {
  const counts = { paymentIntents: 0, charges: 0, refunds: 0, disputes: 0, paymentMethods: 0 };
  const stillUsed = new Set<string>();
  for (const [id, pi] of state.paymentIntents) {
    if (pi.created >= cutoff) break;
    if (OPEN_STATUSES.has(pi.status)) {
      if (typeof pi.payment_method === 'string') stillUsed.add(pi.payment_method);
      continue;
    }
    state.paymentIntents.delete(id);
    counts.paymentIntents += 1;
  }
  for (const [id, charge] of state.charges) {
    if (charge.created >= cutoff) break;
    if (typeof charge.payment_intent === 'string' && state.paymentIntents.has(charge.payment_intent)) continue;
    state.charges.delete(id);
    counts.charges += 1;
  }
  for (const [id, refund] of state.refunds) {
    if (refund.created >= cutoff) break;
    if (refund.status === 'pending' || (typeof refund.charge === 'string' && state.charges.has(refund.charge))) continue;
    state.refunds.delete(id);
    counts.refunds += 1;
  }
  for (const [id, dispute] of state.disputes) {
    if (dispute.created >= cutoff) break;
    if (typeof dispute.charge === 'string' && state.charges.has(dispute.charge)) continue;
    state.disputes.delete(id);
    counts.disputes += 1;
  }
  for (const [id, stored] of state.paymentMethods) {
    if (stored.object.created >= cutoff) break;
    // One attached to a customer can be used again; an unattached one is spent once its payment is done.
    if (stored.object.customer || stillUsed.has(id)) continue;
    state.paymentMethods.delete(id);
    counts.paymentMethods += 1;
  }
  return counts;
}
