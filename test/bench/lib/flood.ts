import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Pool } from 'pg';
import { walPosition, walSince } from './db';
import { ClosedLoopResult, PaidWatcher, postEvents } from './load';
import { ServerProcess } from './processes';
import { distribution, Distribution, waitFor } from './stats';
import { EventSource } from './stripe-events';

/** GET /metrics needs a key; the bench scrapes with a token of its own, as Prometheus would. */
export const BENCH_METRICS_TOKEN = `bench-metrics-${randomBytes(8).toString('hex')}`;

/** The local receiver of Settle's order events (ORDER_EVENTS_URL), in a process of its own. */
export interface OrderEventReceiver {
  server: ServerProcess;
  url: string;
  secret: string;
  stats(): Promise<{ requests: number; badSignatures: number; firstSeen: Array<[number, number]> }>;
}

/** test/bench/servers/order-event-receiver.ts in its own process. */
export async function startOrderEventReceiver(): Promise<OrderEventReceiver> {
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const server = await ServerProcess.start('order-event-receiver', join(__dirname, '..', 'servers', 'order-event-receiver.js'), { ORDER_EVENTS_SECRET: secret, PORT: '0' });
  return { server, url: `${server.url}/order-events`, secret, stats: async () => (await (await fetch(`${server.url}/stats`)).json()) as Awaited<ReturnType<OrderEventReceiver['stats']>> };
}

export async function undeliveredOrderEvents(pool: Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM order_event_deliveries WHERE status <> 'delivered'`);
  return Number(rows[0]?.n ?? 0);
}

export interface FloodResult {
  events: number;
  ingest: ClosedLoopResult;
  allPaidS: number;
  rate: number;
  unsettled: number;
  settle: Distribution;
  /** From the app's own settle_event_processing_seconds: mean time to apply one event (its transaction), and jobs applied at once on average (Little's law). */
  meanApplyMs?: number;
  meanJobsInFlight?: number;
  /** Mean events per applying transaction during the flood. */
  meanBatchSize?: number;
  /** WAL the PostgreSQL server wrote from the flood's first send until all were paid, per event (intake, applying, order events). */
  walBytesPerEvent?: number;
  /** With a receiver: the flood's order events at the receiver. */
  orderEvents?: { delivered: number; allDeliveredS: number; rate: number; undelivered: number; age: Distribution; badSignatures: number };
}

/**
 * Sends `events` of `source` as fast as `connections` go and measures the
 * rate at which their orders were paid (seen in order_status_history). With a
 * receiver, also waits until every order event was delivered and reports the
 * flood's: earlier events must all have been delivered before it starts.
 */
export async function measureFlood(input: { url: string; pool: Pool; source: EventSource; events: number; connections: number; receiver?: OrderEventReceiver }): Promise<FloodResult> {
  const { url, pool, source, events, receiver } = input;
  const watcher = new PaidWatcher(pool, 25);
  const before = await processingMetric(url);
  const sentAt = new Map<string, number>();
  const walBefore = await walPosition(pool);
  const began = performance.now();
  const beganWall = Date.now();
  await watcher.start();
  const ingest = await postEvents(url, source, {
    connections: input.connections,
    amount: events,
    onSend: (e) => {
      watcher.expect(e.orderId);
      sentAt.set(e.orderId, performance.now());
    },
  });
  await watcher.drained(180_000);
  const walBytes = await walSince(pool, walBefore);
  await watcher.stop();
  const lastPaid = Math.max(...watcher.paidAt.values());
  const allPaidS = (lastPaid - began) / 1000;
  // Here from the send, not the ack (autocannon does not say when each answer came): queueing time included.
  const latencies = [...watcher.paidAt].map(([id, at]) => at - (sentAt.get(id) ?? began));
  const after = await processingMetric(url);
  const applied = before && after ? after.count - before.count : NaN;
  const meanApplyMs = before && after && applied > 0 ? (1000 * (after.sum - before.sum)) / applied : undefined;
  const rate = watcher.paidAt.size / allPaidS;
  let orderEvents: FloodResult['orderEvents'];
  if (receiver) {
    await waitFor(async () => (await undeliveredOrderEvents(pool)) === 0, 180_000, 100);
    const stats = await receiver.stats();
    const flood = stats.firstSeen.filter(([at]) => at >= beganWall).map(([at, ageMs]) => ({ at, ageMs }));
    const lastAt = Math.max(...flood.map((s) => s.at));
    const allDeliveredS = (lastAt - beganWall) / 1000;
    orderEvents = {
      delivered: flood.length,
      allDeliveredS,
      rate: flood.length / allDeliveredS,
      undelivered: await undeliveredOrderEvents(pool),
      age: distribution(flood.map((s) => s.ageMs)),
      badSignatures: stats.badSignatures,
    };
  }
  return {
    events,
    ingest,
    allPaidS,
    rate,
    unsettled: watcher.outstanding,
    settle: distribution(latencies),
    meanApplyMs,
    meanJobsInFlight: meanApplyMs !== undefined ? (rate * meanApplyMs) / 1000 : undefined,
    meanBatchSize: before && after && after.batches > before.batches ? (after.batchedEvents - before.batchedEvents) / (after.batches - before.batches) : undefined,
    walBytesPerEvent: walBytes / events,
    orderEvents,
  };
}

/**
 * From GET /metrics: sum and count of settle_event_processing_seconds (all
 * outcomes) and of settle_event_batch_size (events per applying transaction).
 */
async function processingMetric(url: string): Promise<{ sum: number; count: number; batchedEvents: number; batches: number } | undefined> {
  try {
    const text = await (await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${BENCH_METRICS_TOKEN}` } })).text();
    const total = (name: string, part: 'sum' | 'count') => {
      let value = 0;
      for (const m of text.matchAll(new RegExp(`^${name}_${part}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) value += Number(m[1]);
      return value;
    };
    return {
      sum: total('settle_event_processing_seconds', 'sum'),
      count: total('settle_event_processing_seconds', 'count'),
      batchedEvents: total('settle_event_batch_size', 'sum'),
      batches: total('settle_event_batch_size', 'count'),
    };
  } catch {
    return undefined;
  }
}
