import { Pool } from 'pg';
import { createTestDatabase } from '../../support/services';
import { inboxBacklog, seedOrders } from '../lib/db';
import { FloodResult, measureFlood, OrderEventReceiver, startOrderEventReceiver, undeliveredOrderEvents } from '../lib/flood';
import { postEvents } from '../lib/load';
import { Phase } from '../lib/phase';
import { ServerProcess } from '../lib/processes';
import { distribution, fmt, ms, waitFor } from '../lib/stats';
import { EventSource } from '../lib/stripe-events';

export type DeliveryMode = 'without' | 'with';

export interface DeliveryRound {
  without: FloodResult;
  with: FloodResult;
  /** 1 - settled/s with delivery ÷ without: the share of the settle rate delivering costs. */
  cost: number;
}

export interface DeliveryResult {
  rounds: DeliveryRound[];
  medianCost: number;
  /** Over the floods with delivery: order events delivered a second, and commit→receiver p50 and p99 (medians of the floods'). */
  deliveredPerS: number;
  ageP50Ms: number;
  ageP99Ms: number;
  undelivered: number;
  badSignatures: number;
}

/**
 * What delivering order events costs the settle rate (issue 17's target):
 * floods of signed `payment_intent.succeeded` events, each paying an unpaid
 * order, on a Settle process without ORDER_EVENTS_URL and on one posting every
 * event to a local receiver, alternating in each round (ABBA), so the
 * machine's drift over minutes falls on both sides alike; the cost is each
 * round's, and the median is the figure. Order events are written either way
 * (the live stream reads them); only the deliveries and their sending differ.
 *
 * Each flood gets a fresh process (started, warmed up with `warmEvents` of its
 * own, stopped after), on a database and queue of the phase's own, so neither
 * configuration inherits the other's backlog or JIT state.
 */
export async function runDeliveryPhase(input: {
  phase: Phase;
  appScript: string;
  nodeArgs: string[];
  /** Settle's environment for the bench, without ORDER_EVENTS_URL; its database and queue prefix are replaced. */
  env: Record<string, string>;
  queuePrefix: string;
  secret: string;
  runTag: string;
  rounds: number;
  floodEvents: number;
  warmEvents: number;
  connections: number;
  /** The first order number of the phase's own (rounds × 2 floods, each warmEvents + floodEvents orders). */
  orderFrom: number;
  /**
   * Diagnosis (BENCH_COMPARE_SCRIPT): another build of Settle. Then no order
   * events are posted on either side: the 'without' floods run that build and
   * the 'with' floods this one, so `cost` is 1 - this build ÷ that one.
   */
  compareScript?: string;
}): Promise<DeliveryResult> {
  const { phase } = input;
  const perFlood = input.warmEvents + input.floodEvents;
  const floods = input.rounds * 2;
  const db = await createTestDatabase();
  const pool = new Pool({ connectionString: db.url, max: 4 });
  let receiver: OrderEventReceiver | undefined;
  try {
    receiver = await startOrderEventReceiver();
    const env = { ...input.env, DATABASE_URL: db.url, QUEUE_PREFIX: input.queuePrefix };
    const rounds: DeliveryRound[] = [];
    for (let round = 0; round < input.rounds; round++) {
      const order: DeliveryMode[] = round % 2 === 0 ? ['without', 'with'] : ['with', 'without'];
      const measured: Partial<Record<DeliveryMode, FloodResult>> = {};
      for (const mode of order) {
        const k = round * 2 + order.indexOf(mode);
        const from = input.orderFrom + k * perFlood;
        const withReceiver = mode === 'with' && !input.compareScript ? receiver : undefined;
        const settle = await ServerProcess.start(
          `settle-delivery-${mode}`,
          mode === 'without' && input.compareScript ? input.compareScript : input.appScript,
          { ...env, ...(withReceiver ? { ORDER_EVENTS_URL: withReceiver.url, ORDER_EVENTS_SECRET: withReceiver.secret } : {}) },
          { nodeArgs: input.nodeArgs },
        );
        try {
          // The first start migrated the database; the orders of every flood are seeded once.
          if (k === 0) {
            await seedOrders(pool, input.orderFrom, floods * perFlood);
            await pool.query('VACUUM ANALYZE orders, payments');
          }
          // Warm-up: the JIT and the pools, on orders of this flood's own; applied (and delivered) before the flood.
          await postEvents(settle.url, new EventSource(`${input.runTag}dw${k}`, input.secret, from, input.warmEvents, 0), { connections: input.connections, amount: input.warmEvents });
          await waitFor(async () => (await inboxBacklog(pool)) === 0 && (!withReceiver || (await undeliveredOrderEvents(pool)) === 0), 120_000, 100);
          const side = input.compareScript ? (mode === 'with' ? 'this build' : 'the compared build') : `${mode} order events posted`;
          measured[mode] = await phase(
            `delivery round ${round + 1}/${input.rounds}, ${side}: flood of ${fmt(input.floodEvents)} at ${input.connections} connections`,
            () =>
              measureFlood({
                url: settle.url,
                pool,
                source: new EventSource(`${input.runTag}df${k}`, input.secret, from + input.warmEvents, input.floodEvents, input.floodEvents),
                events: input.floodEvents,
                connections: input.connections,
                receiver: withReceiver,
              }),
            (r) =>
              `${fmt(r.rate)} settled/s, ${r.unsettled} never paid` +
              (r.orderEvents ? `; ${fmt(r.orderEvents.delivered)} order events delivered at ${fmt(r.orderEvents.rate)}/s, commit→receiver p50 ${ms(r.orderEvents.age.p50)}, p99 ${ms(r.orderEvents.age.p99)}` : ''),
            settle.pid,
          );
          // The next flood must not pay for this one's autovacuum.
          await pool.query('VACUUM (ANALYZE) webhook_events, orders, payments, order_status_history, order_events, order_event_deliveries');
        } finally {
          await settle.stop();
        }
      }
      const without = measured.without as FloodResult;
      const withDelivery = measured.with as FloodResult;
      rounds.push({ without, with: withDelivery, cost: 1 - withDelivery.rate / without.rate });
    }
    const posted = rounds.map((r) => r.with.orderEvents).filter((o): o is NonNullable<FloodResult['orderEvents']> => o !== undefined);
    return {
      rounds,
      medianCost: median(rounds.map((r) => r.cost)),
      deliveredPerS: median(posted.map((o) => o.rate)),
      ageP50Ms: median(posted.map((o) => o.age.p50)),
      ageP99Ms: median(posted.map((o) => o.age.p99)),
      undelivered: posted.reduce((n, o) => n + o.undelivered, 0),
      badSignatures: posted.reduce((n, o) => n + o.badSignatures, 0),
    };
  } finally {
    await receiver?.server.stop();
    await pool.end();
    await db.drop();
  }
}

/** The middle value (of an even count, the lower middle one). */
function median(values: number[]): number {
  return distribution(values).p50;
}
