import autocannon from 'autocannon';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { Pool } from 'pg';
import { distribution, Distribution, sleep } from './stats';
import { EventSource, SignedEvent } from './stripe-events';

export interface ClosedLoopResult {
  /** 2xx answers per second over the run. */
  rate: number;
  p50: number;
  p99: number;
  ok: number;
  /** Non-2xx answers plus connection errors and timeouts. */
  errors: number;
  durationS: number;
}

function summarize(r: autocannon.Result, durationS = r.duration): ClosedLoopResult {
  const ok = r['2xx'];
  return { rate: ok / durationS, p50: r.latency.p50, p99: r.latency.p99, ok, errors: r.non2xx + r.errors, durationS };
}

/**
 * Closed loop: `connections` keep-alive connections, each sending its next
 * unique signed event as soon as the previous one is answered, for
 * `durationS` seconds or until `amount` requests. `onSend` hears each event as it goes.
 */
export async function postEvents(
  baseUrl: string,
  source: Pick<EventSource, 'take'>,
  options: { connections: number; durationS?: number; amount?: number; onSend?: (e: SignedEvent) => void },
): Promise<ClosedLoopResult> {
  // With `amount`, autocannon notices the end at its next 1 s sample, so its own duration is
  // rounded up to whole seconds: time the run from the first send to the last answer instead.
  let firstSend: number | undefined;
  let lastAnswer = 0;
  const result = await autocannon({
    url: baseUrl,
    connections: options.connections,
    ...(options.amount ? { amount: options.amount } : { duration: options.durationS ?? 10 }),
    timeout: 30,
    requests: [
      {
        method: 'POST',
        path: '/webhooks/stripe',
        setupRequest: (req) => {
          firstSend ??= performance.now();
          const event = source.take();
          options.onSend?.(event);
          return { ...req, body: event.body, headers: { 'content-type': 'application/json', 'stripe-signature': event.signature } };
        },
        // Only when it is needed: a response callback makes autocannon keep every answer's body.
        ...(options.amount
          ? {
              onResponse: () => {
                lastAnswer = performance.now();
              },
            }
          : {}),
      },
    ],
  });
  return summarize(result, options.amount && firstSend !== undefined && lastAnswer > firstSend ? (lastAnswer - firstSend) / 1000 : result.duration);
}

/** Closed loop on POST /orders with a JSON body. */
export async function postOrders(baseUrl: string, options: { connections: number; durationS: number; body: string }): Promise<ClosedLoopResult> {
  const result = await autocannon({
    url: `${baseUrl}/orders`,
    method: 'POST',
    connections: options.connections,
    duration: options.durationS,
    timeout: 30,
    headers: { 'content-type': 'application/json' },
    body: options.body,
  });
  return summarize(result);
}

export interface PacedResult {
  offered: number;
  sent: number;
  ok: number;
  errors: number;
  /** Ack latency measured from each request's scheduled send time (open loop: no coordinated omission). */
  ack: Distribution;
  /** performance.now() of each 2xx ack, by order id. */
  ackAt: Map<string, number>;
  /** The highest number of requests waiting for their answer at once. */
  maxInFlight: number;
}

/**
 * Open loop: sends events on a fixed schedule (`rate` a second for
 * `durationS`), whether or not earlier ones were answered.
 */
export async function paceEvents(baseUrl: string, source: EventSource, rate: number, durationS: number, onSend?: (e: SignedEvent) => void): Promise<PacedResult> {
  const url = new URL('/webhooks/stripe', baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const total = Math.round(rate * durationS);
  const intervalMs = 1000 / rate;
  const latencies: number[] = [];
  const ackAt = new Map<string, number>();
  let ok = 0;
  let errors = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const pending: Promise<void>[] = [];

  const send = (event: SignedEvent, scheduledAt: number) =>
    new Promise<void>((resolve) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const req = http.request(
        url,
        {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(event.body), 'stripe-signature': event.signature },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            const now = performance.now();
            inFlight--;
            if (res.statusCode && res.statusCode >= 200 && res.statusCode < 300) {
              ok++;
              latencies.push(now - scheduledAt);
              ackAt.set(event.orderId, now);
            } else errors++;
            resolve();
          });
        },
      );
      req.on('error', () => {
        inFlight--;
        errors++;
        resolve();
      });
      req.end(event.body);
    });

  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const now = performance.now();
    while (sent < total && start + sent * intervalMs <= now) {
      const event = source.take();
      onSend?.(event);
      pending.push(send(event, start + sent * intervalMs));
      sent++;
    }
    const next = start + sent * intervalMs - performance.now();
    await sleep(Math.max(0, Math.min(next, 5)));
  }
  await Promise.all(pending);
  agent.destroy();
  return { offered: rate, sent, ok, errors, ack: distribution(latencies), ackAt, maxInFlight };
}

/**
 * Watches orders become `paid` by tailing order_status_history (a row is seen
 * only once its transaction committed): records performance.now() of the poll
 * that first saw each one, so a time is at most one poll interval late.
 *
 * It reads only rows above a low-water mark, so polling stays cheap however
 * many orders are awaited (polling the orders themselves, thousands at a time,
 * cost PostgreSQL more CPU than the app under test). Ids are handed out before
 * commit, so a transaction may commit after a higher id was seen: the mark
 * stops at the first id not seen yet, and skips it only after GAP_GIVE_UP_MS
 * (a rolled-back insert leaves a hole for good).
 */
export class PaidWatcher {
  private static readonly GAP_GIVE_UP_MS = 3000;
  private readonly pending = new Set<string>();
  readonly paidAt = new Map<string, number>();
  private stopped = false;
  private loop?: Promise<void>;
  private mark = 0;
  private readonly seenAbove = new Set<number>();
  private gapSince?: number;

  constructor(private readonly pool: Pool, private readonly everyMs: number) {}

  expect(orderId: string): void {
    if (!this.paidAt.has(orderId)) this.pending.add(orderId);
  }

  get outstanding(): number {
    return this.pending.size;
  }

  /** Starts from the newest history row now: only later transitions are watched. */
  async start(): Promise<void> {
    const { rows } = await this.pool.query<{ max: string | null }>(`SELECT max(id) AS max FROM order_status_history`);
    this.mark = Number(rows[0]?.max ?? 0);
    this.loop = (async () => {
      while (!this.stopped) {
        const began = performance.now();
        await this.poll();
        await sleep(Math.max(0, this.everyMs - (performance.now() - began)));
      }
    })();
  }

  private async poll(): Promise<void> {
    const { rows } = await this.pool.query<{ id: string; order_id: string; to_status: string }>(
      `SELECT id, order_id, to_status FROM order_status_history WHERE id > $1 ORDER BY id LIMIT 10000`,
      [this.mark],
    );
    const now = performance.now();
    for (const row of rows) {
      this.seenAbove.add(Number(row.id));
      if (row.to_status === 'paid' && this.pending.delete(row.order_id)) this.paidAt.set(row.order_id, now);
    }
    while (this.seenAbove.delete(this.mark + 1)) this.mark++;
    if (this.seenAbove.size === 0) this.gapSince = undefined;
    else if (this.gapSince === undefined) this.gapSince = now;
    else if (now - this.gapSince > PaidWatcher.GAP_GIVE_UP_MS) {
      this.mark = Math.min(...this.seenAbove) - 1;
      this.gapSince = undefined;
    }
  }

  /** Resolves when nothing is outstanding (true) or after `timeoutMs` (false). */
  async drained(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (this.pending.size > 0) {
      if (performance.now() > deadline) return false;
      await sleep(5);
    }
    return true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}
