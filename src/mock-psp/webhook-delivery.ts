import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type Stripe from 'stripe';
import { nowSeconds, seededRandom } from './ids';

/** How the network between the PSP and the backend misbehaves; all off by default. */
export interface DeliveryFaults {
  /** Share of events never delivered (the PSP believes they were), 0..1. */
  dropRate?: number;
  /** Share of events delivered twice, 0..1. */
  duplicateRate?: number;
  /** Deliveries are held in groups of this many and sent shuffled. */
  reorderWindow?: number;
  /** Each delivery waits a random time in this range, in milliseconds. */
  delayMs?: [number, number];
}

export interface DeliveryState {
  attempts: number;
  delivered: boolean;
  /** true while a first delivery or a retry is still to come. */
  pending: boolean;
  dropped: boolean;
  lastStatus: number | null;
  lastError: string | null;
}

/** Stripe's signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.payload">`. */
export function signPayload(payload: string, secret: string, timestamp = nowSeconds()): string {
  const signature = createHmac('sha256', secret).update(`${timestamp}.${payload}`, 'utf8').digest('hex');
  return `t=${timestamp},v1=${signature}`;
}

interface Options {
  secret: string;
  timeScale: number;
  maxAttempts: number;
}

/**
 * Posts each event to the forwarding URL, signed as Stripe signs, and retries
 * non-2xx answers and timeouts with exponential backoff (time-scaled). Faults
 * are drawn from a seeded generator so a test run can be reproduced.
 */
export class WebhookDelivery {
  private forwardTo: URL | undefined;
  private faults: DeliveryFaults = {};
  // Separate streams, so which events are dropped or doubled depends only on the seed and the
  // order of events, not on how timing happened to batch the reordering.
  private random: () => number = Math.random;
  private shuffleRandom: () => number = Math.random;
  private readonly states = new Map<string, DeliveryState>();
  private reorderBuffer: Array<{ event: Stripe.Event; payload: string }> = [];
  private reorderTimer: NodeJS.Timeout | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private inFlight = 0;
  private stopped = false;
  private readonly agent = { http: new http.Agent({ keepAlive: true, maxSockets: 32 }), https: new https.Agent({ keepAlive: true, maxSockets: 32 }) };

  constructor(private readonly options: Options) {}

  setForwardTo(url: string | undefined): void {
    this.forwardTo = url ? new URL(url) : undefined;
  }

  setFaults(faults: DeliveryFaults, seed?: number): void {
    this.faults = { ...faults };
    this.random = seed === undefined ? Math.random : seededRandom(seed);
    this.shuffleRandom = seed === undefined ? Math.random : seededRandom(seed ^ 0x5bd1e995);
  }

  state(eventId: string): DeliveryState | undefined {
    return this.states.get(eventId);
  }

  /** Drops the delivery record of an event the log no longer keeps (a retry still due re-creates nothing). */
  forget(eventId: string): void {
    this.states.delete(eventId);
  }

  /** Delivery records kept. */
  get recordCount(): number {
    return this.states.size;
  }

  /** Nothing waiting, buffered or on the wire. */
  get busy(): boolean {
    return this.inFlight > 0 || this.timers.size > 0 || this.reorderBuffer.length > 0;
  }

  /** A new event: apply the faults, then deliver. Without a forwarding URL nothing is sent. */
  enqueue(event: Stripe.Event, payload: string): void {
    if (!this.forwardTo || this.stopped) return;
    const state = freshState();
    this.states.set(event.id, state);
    // One count per target (the forwarding URL, each registered endpoint), as Stripe counts endpoints.
    (event as { pending_webhooks: number }).pending_webhooks += 1;
    const dropDraw = this.random();
    const duplicateDraw = this.random();
    if (this.faults.dropRate && dropDraw < this.faults.dropRate) {
      state.dropped = true;
      state.pending = false;
      return;
    }
    const copies = this.faults.duplicateRate && duplicateDraw < this.faults.duplicateRate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      if (this.faults.reorderWindow && this.faults.reorderWindow > 1) this.bufferForReorder(event, payload);
      else this.afterFaultDelay(() => this.attempt(event, payload));
    }
  }

  /** Sends an event again now, whatever happened before (the dashboard's "resend"). */
  redeliver(event: Stripe.Event, payload: string): void {
    if (!this.forwardTo) throw new Error('No forwarding URL is set, so there is nowhere to redeliver to');
    const state = this.states.get(event.id) ?? freshState();
    state.pending = true;
    this.states.set(event.id, state);
    void this.attempt(event, payload, false);
  }

  private bufferForReorder(event: Stripe.Event, payload: string): void {
    this.reorderBuffer.push({ event, payload });
    if (this.reorderBuffer.length >= (this.faults.reorderWindow as number)) {
      this.flushReorder();
      return;
    }
    // A partly filled window is flushed soon anyway, so a lull never strands events.
    if (!this.reorderTimer) this.reorderTimer = setTimeout(() => this.flushReorder(), Math.max(5, 200 * this.options.timeScale));
  }

  private flushReorder(): void {
    if (this.reorderTimer) clearTimeout(this.reorderTimer);
    this.reorderTimer = undefined;
    const batch = this.reorderBuffer;
    this.reorderBuffer = [];
    for (let i = batch.length - 1; i > 0; i--) {
      const j = Math.floor(this.shuffleRandom() * (i + 1));
      [batch[i], batch[j]] = [batch[j], batch[i]];
    }
    for (const { event, payload } of batch) this.afterFaultDelay(() => this.attempt(event, payload));
  }

  private afterFaultDelay(send: () => void): void {
    const range = this.faults.delayMs;
    if (!range) return send();
    const [min, max] = range;
    this.later(min + this.shuffleRandom() * (max - min), send);
  }

  private later(ms: number, action: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.stopped) action();
    }, ms);
    this.timers.add(timer);
  }

  private async attempt(event: Stripe.Event, payload: string, retry = true): Promise<void> {
    const state = this.states.get(event.id);
    const target = this.forwardTo;
    if (!state || !target) return;
    state.attempts += 1;
    this.inFlight += 1;
    try {
      const status = await this.post(target, payload);
      state.lastStatus = status;
      if (status >= 200 && status < 300) {
        if (!state.delivered) {
          const counted = event as { pending_webhooks: number };
          counted.pending_webhooks = Math.max(0, counted.pending_webhooks - 1);
        }
        state.delivered = true;
        state.pending = false;
        return;
      }
      state.lastError = `HTTP ${status}`;
    } catch (err) {
      state.lastError = (err as Error).message;
    } finally {
      this.inFlight -= 1;
    }
    if (state.delivered) return;
    if (retry && state.attempts < this.options.maxAttempts && !this.stopped) {
      // Stripe backs off over days; scaled down, the shape is the same: 1 s, 2 s, 4 s …
      this.later(1000 * 2 ** (state.attempts - 1) * this.options.timeScale, () => void this.attempt(event, payload));
    } else {
      state.pending = false;
    }
  }

  private post(target: URL, payload: string): Promise<number> {
    const body = Buffer.from(payload, 'utf8');
    const client = target.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = client.request(
        target,
        {
          method: 'POST',
          agent: target.protocol === 'https:' ? this.agent.https : this.agent.http,
          headers: {
            'Content-Type': 'application/json; charset=utf-8',
            'Content-Length': body.length,
            'User-Agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
            'Stripe-Signature': signPayload(payload, this.options.secret),
          },
          timeout: 10_000,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out after 10 s')));
      req.on('error', reject);
      req.end(body);
    });
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    if (this.reorderTimer) clearTimeout(this.reorderTimer);
    this.reorderBuffer = [];
    this.agent.http.destroy();
    this.agent.https.destroy();
  }
}

/** An event's delivery record before its first attempt. */
function freshState(): DeliveryState {
  return { attempts: 0, delivered: false, pending: true, dropped: false, lastStatus: null, lastError: null };
}
