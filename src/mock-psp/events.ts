import Stripe from 'stripe';
import { newId, nowSeconds } from './ids';

/** Events are rendered in the version the installed SDK speaks, as a new Stripe account would. */
export const MOCK_API_VERSION: string = Stripe.API_VERSION;

/** The API request that caused an event; automatic changes (a delayed settlement, a dispute) have none. */
export interface RequestContext {
  id: string | null;
  idempotencyKey: string | null;
}

export const AUTOMATIC: RequestContext = { id: null, idempotencyKey: null };

export type EventListener = (event: Stripe.Event, payload: string) => void;

/**
 * Every event the mock ever emitted, oldest first, and who wants to hear of
 * new ones (webhook delivery, `stripe listen` sessions).
 */
export class EventLog {
  private readonly log: Stripe.Event[] = [];
  /** When each event in `log` was emitted (ms), for retention at a finer grain than `created`. */
  private readonly emittedAt: number[] = [];
  private readonly byId = new Map<string, Stripe.Event>();
  private readonly listeners = new Set<EventListener>();

  /** Records a snapshot of `object` (so later changes do not alter the event) and tells listeners. */
  emit(type: string, object: object, request: RequestContext, previous?: Record<string, unknown>): Stripe.Event {
    const data: Record<string, unknown> = { object: JSON.parse(JSON.stringify(object)) };
    if (previous) data.previous_attributes = previous;
    const event = {
      id: newId('evt'),
      object: 'event',
      api_version: MOCK_API_VERSION,
      created: nowSeconds(),
      data,
      livemode: false,
      pending_webhooks: 0,
      request: { id: request.id, idempotency_key: request.idempotencyKey },
      type,
    } as unknown as Stripe.Event;
    this.log.push(event);
    this.emittedAt.push(Date.now());
    this.byId.set(event.id, event);
    const payload = JSON.stringify(event, null, 2);
    for (const listener of this.listeners) listener(event, payload);
    return event;
  }

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get(id: string): Stripe.Event | undefined {
    return this.byId.get(id);
  }

  /** Oldest first. */
  all(): readonly Stripe.Event[] {
    return this.log;
  }

  /** Forgets events emitted before `notBefore` (ms), as Stripe keeps events 30 days; returns them. */
  prune(notBefore: number): Stripe.Event[] {
    let count = 0;
    while (count < this.emittedAt.length && this.emittedAt[count] < notBefore) count += 1;
    if (count === 0) return [];
    this.emittedAt.splice(0, count);
    const removed = this.log.splice(0, count);
    for (const event of removed) this.byId.delete(event.id);
    return removed;
  }
}
