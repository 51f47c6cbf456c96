import { randomBytes } from 'node:crypto';
import { signedHeader } from './child-stack';

export interface Delivery {
  id: string;
  status: number;
  ms: number;
}

/** A signed event of a type Settle stores and ignores (no order is involved): what the ack path costs alone. */
export function unrelatedEvent(id = `evt_burst_${randomBytes(6).toString('hex')}`): { id: string; payload: string } {
  return { id, payload: JSON.stringify({ id, object: 'event', type: 'customer.created', created: Math.floor(Date.now() / 1000), data: { object: { id: 'cus_1', object: 'customer' } } }) };
}

/** Posts one signed event and times its answer. */
export async function deliver(url: string, event: { id: string; payload: string }): Promise<Delivery> {
  const began = performance.now();
  const res = await fetch(`${url}/webhooks/stripe`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Stripe-Signature': signedHeader(event.payload) },
    body: event.payload,
  });
  await res.arrayBuffer();
  return { id: event.id, status: res.status, ms: performance.now() - began };
}

/** Delivers `events` with `concurrency` senders, as a PSP's burst would arrive. */
export async function burst(url: string, events: Array<{ id: string; payload: string }>, concurrency: number): Promise<Delivery[]> {
  const out: Delivery[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < events.length) out.push(await deliver(url, events[next++] as { id: string; payload: string }));
    }),
  );
  return out;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}
