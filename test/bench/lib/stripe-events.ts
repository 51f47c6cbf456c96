import { createHash, createHmac } from 'node:crypto';

/**
 * Stripe-shaped webhook events for orders the bench seeded with SQL: order n has
 * id md5('bench-n') as a uuid and PaymentIntent pi_bench_n, amount 2000 usd.
 */

export const BENCH_AMOUNT = 2000;
export const BENCH_CURRENCY = 'usd';

export function benchOrderId(n: number): string {
  const h = createHash('md5').update(`bench-${n}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function benchIntentId(n: number): string {
  return `pi_bench_${n}`;
}

/** The `t=…,v1=…` header Stripe sends: HMAC-SHA256 of `${t}.${body}` keyed with the whole whsec_ secret. */
export function signatureHeader(body: string, secret: string, timestamp = Math.floor(Date.now() / 1000)): string {
  const v1 = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return `t=${timestamp},v1=${v1}`;
}

export interface SignedEvent {
  id: string;
  orderId: string;
  body: string;
  signature: string;
}

/** payment_intent.succeeded for bench order n, as Stripe would send it (trimmed to the fields a PaymentIntent always has). */
export function succeededEvent(runTag: string, seq: number, orderN: number, secret: string, created = Math.floor(Date.now() / 1000)): SignedEvent {
  const id = `evt_bench_${runTag}_${seq}`;
  const orderId = benchOrderId(orderN);
  const intent = {
    id: benchIntentId(orderN),
    object: 'payment_intent',
    amount: BENCH_AMOUNT,
    amount_capturable: 0,
    amount_received: BENCH_AMOUNT,
    capture_method: 'automatic',
    client_secret: `${benchIntentId(orderN)}_secret_bench`,
    confirmation_method: 'automatic',
    created: created - 5,
    currency: BENCH_CURRENCY,
    latest_charge: `ch_bench_${orderN}`,
    livemode: false,
    metadata: { order_id: orderId },
    payment_method: 'pm_card_visa',
    payment_method_types: ['card'],
    status: 'succeeded',
  };
  const event = {
    id,
    object: 'event',
    api_version: '2025-01-27.acacia',
    created,
    data: { object: intent },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type: 'payment_intent.succeeded',
  };
  const body = JSON.stringify(event);
  return { id, orderId, body, signature: signatureHeader(body, secret, created) };
}

/** A source of unique signed events for one target: precomputed up to `precompute`, built on the fly past that. */
export class EventSource {
  private readonly pool: SignedEvent[] = [];
  private next = 0;

  constructor(
    private readonly runTag: string,
    private readonly secret: string,
    private readonly orderFrom: number,
    private readonly orderCount: number,
    precompute: number,
  ) {
    for (let i = 0; i < precompute; i++) this.pool.push(this.build(i));
  }

  private build(seq: number): SignedEvent {
    return succeededEvent(this.runTag, seq, this.orderFrom + (seq % this.orderCount), this.secret);
  }

  take(): SignedEvent {
    const seq = this.next++;
    return seq < this.pool.length ? (this.pool[seq] as SignedEvent) : this.build(seq);
  }

  get taken(): number {
    return this.next;
  }
}
