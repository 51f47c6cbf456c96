import { performance } from 'node:perf_hooks';
import { Pool } from 'pg';
import Stripe from 'stripe';
import { MockPsp } from '../../../src/mock-psp';
import { eventsFor, FlowName, historyProblems, pspTruth, runFlow } from '../../support/psp-flows';
import { shuffle } from '../../support/shuffle';
import { inboxBacklog } from '../lib/db';
import { ClosedLoopResult, postEvents } from '../lib/load';
import { distribution, Distribution, fmt, ms, waitFor } from '../lib/stats';
import { signatureHeader, SignedEvent } from '../lib/stripe-events';
import { ORDER_BODY } from './orders';
import { Phase } from '../lib/phase';

/** A success followed by one partial refund (the e2e flows refund partially only on the way to a full refund). */
type MixedFlow = FlowName | 'partialRefund';

const PARTIAL_REFUND = 1000;

/**
 * The flows of the mix, taken in turn, each with the order status its end at
 * the PSP implies (a dispute won returns the order to paid). Every one is
 * also checked against the PSP's own state before the flood (pspTruth).
 */
const MIX: ReadonlyArray<{ flow: MixedFlow; expect: string; captureMethod?: 'manual' }> = [
  { flow: 'failureThenSuccess', expect: 'paid' },
  { flow: 'partialRefund', expect: 'partially_refunded' },
  { flow: 'partialThenFullRefund', expect: 'refunded' },
  { flow: 'disputeWon', expect: 'paid' },
  { flow: 'disputeLost', expect: 'dispute_lost' },
  { flow: 'manualCapture', expect: 'paid', captureMethod: 'manual' },
];

/** BENCH_MIXED_FLOWS=disputeLost,… narrows the mix to these flows (to chase one of them); all by default. */
const CHOSEN = (process.env.BENCH_MIXED_FLOWS ?? '').split(',').map((f) => f.trim()).filter(Boolean);
const MIXED = CHOSEN.length ? MIX.filter((m) => CHOSEN.includes(m.flow)) : MIX;
if (MIXED.length === 0) throw new Error(`BENCH_MIXED_FLOWS names none of ${MIX.map((m) => m.flow).join(', ')}`);

/** Share of the events delivered a second time. */
const DUPLICATED = 0.1;
/** Longest wait for the inbox to apply everything after the last delivery was answered. */
const DRAIN_TIMEOUT_MS = 300_000;

interface DrivenOrder {
  orderId: string;
  intentId: string;
  flow: MixedFlow;
  expect: string;
  amountRefunded: number;
}

export interface MixedResult {
  orders: number;
  byFlow: Record<string, number>;
  /** Distinct events the PSP emitted for these orders, by type. */
  events: number;
  byType: Record<string, number>;
  /** Deliveries posted: every event once, DUPLICATED of them twice, shuffled. */
  deliveries: number;
  duplicates: number;
  seed: number;
  driveS: number;
  ingest: ClosedLoopResult;
  /** Events reaching processed/ignored in the inbox a second, from the first delivery to the last one applied. */
  settledRate: number;
  allAppliedS: number;
  /** From the first delivery until the last order reached its final status. */
  allFinalS: number;
  /**
   * Per order: from the first send of the event its final transition names to
   * that transition (the history entry's `at`, taken by the app just before
   * its commit). Orders whose final transition names no delivered event are
   * timed from the flood's start and counted in `unattributed`.
   */
  toFinal: Distribution;
  toFinalByFlow: Record<string, Distribution>;
  unattributed: number;
  /** Requests the applier made to the PSP while the flood was applied (charge → PaymentIntent, refunds). */
  pspCalls: number;
  /** Inbox rows of these events: applied, given up on, never stored. */
  applied: number;
  dead: number;
  missing: number;
  mismatches: { status: number; history: number; amountRefunded: number; orders: number; examples: string[] };
}

/**
 * The mixed flood: real orders through POST /orders, each driven at the mock
 * PSP with the SDK through one of MIX's flows while the mock forwards
 * nothing; then every event the PSP emitted for them, a tenth of them twice,
 * shuffled and signed, as fast as `connections` go. Measured: ingest, events
 * applied a second, time to each order's final status; then every order is
 * checked against the status the PSP's end state implies, its history for
 * each transition once, and its refunded amount.
 */
export async function runMixedPhase(input: {
  phase: Phase;
  mock: MockPsp;
  settleUrl: string;
  pool: Pool;
  secret: string;
  orders: number;
  connections: number;
  seed: number;
}): Promise<MixedResult> {
  const { phase, mock, pool } = input;
  const stripe = new Stripe('sk_test_bench', { host: '127.0.0.1', port: mock.port, protocol: 'http', telemetry: false, maxNetworkRetries: 2 });
  const driveBegan = performance.now();
  const driven = await phase(
    `mixed: ${fmt(input.orders)} orders through POST /orders, their payments driven at the mock (webhooks off)`,
    () => driveOrders(input.settleUrl, stripe, mock, input.orders),
    (d) => `${fmt(d.length)} orders, ${Object.entries(countBy(d, (o) => o.flow)).map(([f, n]) => `${n} ${f}`).join(', ')}`,
  );
  const driveS = (performance.now() - driveBegan) / 1000;

  const { deliveries, events, duplicates, byType } = prepareDeliveries(mock, driven, input.secret, input.seed);
  if (!(await waitFor(async () => (await inboxBacklog(pool)) === 0, 60_000, 100))) throw new Error('earlier phases left events unapplied');

  return phase(
    `mixed flood: ${fmt(deliveries.length)} deliveries (${fmt(events.length)} events, ${fmt(duplicates)} twice, shuffled) at ${input.connections} connections`,
    async () => {
      const firstSent = new Map<string, number>();
      let next = 0;
      // autocannon asks for exactly `amount` requests; the modulo only keeps a surplus one a duplicate rather than undefined.
      const feed = { take: (): SignedEvent => deliveries[next++ % deliveries.length] as SignedEvent };
      const pspBefore = mock.stats().requests;
      const began = Date.now();
      const ingest = await postEvents(input.settleUrl, feed, {
        connections: input.connections,
        amount: deliveries.length,
        onSend: (e) => {
          if (!firstSent.has(e.id)) firstSent.set(e.id, Date.now());
        },
      });
      if (!(await waitFor(async () => (await inboxBacklog(pool)) === 0, DRAIN_TIMEOUT_MS, 100))) {
        throw new Error(`${await inboxBacklog(pool)} events still unapplied ${DRAIN_TIMEOUT_MS / 1000} s after the mixed flood`);
      }
      const pspCalls = mock.stats().requests - pspBefore;
      const ids = events.map((e) => e.id);
      const { rows: inbox } = await pool.query<{ applied: number; dead: number; stored: number; last_ms: number | null }>(
        `SELECT count(*) FILTER (WHERE status IN ('processed', 'ignored'))::int AS applied, count(*) FILTER (WHERE status = 'dead')::int AS dead,
                count(*)::int AS stored, (extract(epoch FROM max(processed_at) FILTER (WHERE status IN ('processed', 'ignored'))) * 1000)::float8 AS last_ms
           FROM webhook_events WHERE id = ANY($1)`,
        [ids],
      );
      const { applied, dead, stored, last_ms: lastAppliedMs } = inbox[0] as (typeof inbox)[0];
      const allAppliedS = lastAppliedMs !== null ? (lastAppliedMs - began) / 1000 : NaN;
      const check = await checkOrders(pool, driven, deliveries, firstSent, began);
      return {
        orders: driven.length,
        byFlow: countBy(driven, (o) => o.flow),
        events: events.length,
        byType,
        deliveries: deliveries.length,
        duplicates,
        seed: input.seed,
        driveS,
        ingest,
        settledRate: applied / allAppliedS,
        allAppliedS,
        allFinalS: check.allFinalS,
        toFinal: check.toFinal,
        toFinalByFlow: check.toFinalByFlow,
        unattributed: check.unattributed,
        pspCalls,
        applied,
        dead,
        missing: events.length - stored,
        mismatches: check.mismatches,
      };
    },
    (r) =>
      `ingest ${fmt(r.ingest.rate)} ev/s (${r.ingest.errors} errors); ${fmt(r.applied)} applied in ${fmt(r.allAppliedS, 1)} s = ${fmt(r.settledRate)}/s; ` +
      `all final after ${fmt(r.allFinalS, 1)} s, p50 ${ms(r.toFinal.p50)}, p99 ${ms(r.toFinal.p99)}; ${r.pspCalls} PSP calls; ` +
      `${r.mismatches.orders} orders wrong, ${r.dead} dead, ${r.missing} never stored`,
  );
}

/** Creates the orders and runs each one's flow at the PSP, 8 at a time; then checks the PSP ended each where its flow says. */
async function driveOrders(settleUrl: string, stripe: Stripe, mock: MockPsp, count: number): Promise<DrivenOrder[]> {
  mock.setForwardTo(undefined);
  const driven: DrivenOrder[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const mix = MIXED[next++ % MIXED.length] as (typeof MIX)[number];
      const body = mix.captureMethod ? JSON.stringify({ ...JSON.parse(ORDER_BODY), captureMethod: mix.captureMethod }) : ORDER_BODY;
      const res = await fetch(`${settleUrl}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      if (res.status !== 201) throw new Error(`POST /orders answered ${res.status}: ${await res.text()}`);
      const order = (await res.json()) as { id: string; payment: { id: string } };
      if (mix.flow === 'partialRefund') {
        await runFlow(stripe, mock, order.payment.id, 'success');
        await stripe.refunds.create({ payment_intent: order.payment.id, amount: PARTIAL_REFUND });
      } else {
        await runFlow(stripe, mock, order.payment.id, mix.flow);
      }
      driven.push({ orderId: order.id, intentId: order.payment.id, flow: mix.flow, expect: mix.expect, amountRefunded: 0 });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  // Dispute outcomes and refund settlements the PSP still has scheduled.
  await mock.idle(60_000);

  const wrong: string[] = [];
  let checked = 0;
  const checker = async () => {
    while (checked < driven.length) {
      const order = driven[checked++] as DrivenOrder;
      const truth = await pspTruth(stripe, mock, order.intentId);
      order.amountRefunded = truth.amountRefunded;
      if (truth.status !== order.expect) wrong.push(`${order.intentId} (${order.flow}) is ${truth.status} at the PSP, not ${order.expect}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, checker));
  if (wrong.length > 0) throw new Error(`the bench drove ${wrong.length} payments elsewhere than it meant, e.g. ${wrong.slice(0, 3).join('; ')}`);
  return driven;
}

/** Every event the PSP emitted for these orders, DUPLICATED of them a second time, shuffled (seeded) and signed. */
function prepareDeliveries(
  mock: MockPsp,
  driven: DrivenOrder[],
  secret: string,
  seed: number,
): { deliveries: SignedEvent[]; events: Stripe.Event[]; duplicates: number; byType: Record<string, number> } {
  const events: Stripe.Event[] = [];
  const deliveries: SignedEvent[] = [];
  for (const order of driven) {
    for (const event of eventsFor(mock, order.intentId)) {
      const body = JSON.stringify(event);
      events.push(event);
      deliveries.push({ id: event.id, orderId: order.orderId, body, signature: signatureHeader(body, secret) });
    }
  }
  const picks = deliveries.map((_, i) => i);
  shuffle(picks, seed);
  const duplicates = Math.round(deliveries.length * DUPLICATED);
  for (const i of picks.slice(0, duplicates)) deliveries.push(deliveries[i] as SignedEvent);
  shuffle(deliveries, seed + 1);
  return { deliveries, events, duplicates, byType: countBy(events, (e) => e.type) };
}

/** Reads the orders and their history from the database and compares them with what the PSP implies. */
async function checkOrders(
  pool: Pool,
  driven: DrivenOrder[],
  deliveries: SignedEvent[],
  firstSent: Map<string, number>,
  floodBegan: number,
): Promise<Pick<MixedResult, 'allFinalS' | 'toFinal' | 'toFinalByFlow' | 'unattributed' | 'mismatches'>> {
  const ids = driven.map((o) => o.orderId);
  const { rows: orders } = await pool.query<{ id: string; status: string; amount_refunded: number }>(
    `SELECT id, status, amount_refunded FROM orders WHERE id = ANY($1::uuid[])`,
    [ids],
  );
  const { rows: history } = await pool.query<{ order_id: string; from_status: string; to_status: string; at: Date; event_id: string | null }>(
    `SELECT order_id, from_status, to_status, at, event_id FROM order_status_history WHERE order_id = ANY($1::uuid[]) ORDER BY id`,
    [ids],
  );
  const byOrder = new Map<string, typeof history>();
  for (const h of history) append(byOrder, h.order_id, h);
  const current = new Map(orders.map((o) => [o.id, o]));

  const mismatches = { status: 0, history: 0, amountRefunded: 0, orders: 0, examples: [] as string[] };
  const latencies: number[] = [];
  const byFlow = new Map<string, number[]>();
  let unattributed = 0;
  let lastFinal = NaN;
  for (const order of driven) {
    const row = current.get(order.orderId);
    const entries = byOrder.get(order.orderId) ?? [];
    const problems: string[] = [];
    if (row?.status !== order.expect) {
      mismatches.status++;
      problems.push(`status ${row?.status ?? 'missing'}, expected ${order.expect}`);
    }
    const chain = historyProblems(entries.map((h) => ({ from: h.from_status, to: h.to_status })));
    const endsAt = entries.at(-1)?.to_status ?? 'pending_payment';
    if (chain || endsAt !== row?.status) {
      mismatches.history++;
      problems.push(chain ?? `history ends at ${endsAt}, the order is ${row?.status}`);
    }
    if (row && row.amount_refunded !== order.amountRefunded) {
      mismatches.amountRefunded++;
      problems.push(`amountRefunded ${row.amount_refunded}, the PSP says ${order.amountRefunded}`);
    }
    if (problems.length > 0) {
      mismatches.orders++;
      if (mismatches.examples.length < 5) mismatches.examples.push(await explain(pool, order, problems, deliveries, entries));
    }
    const final = entries.at(-1);
    if (final) {
      const at = final.at.getTime();
      const sent = final.event_id ? firstSent.get(final.event_id) : undefined;
      if (sent === undefined) unattributed++;
      latencies.push(at - (sent ?? floodBegan));
      append(byFlow, order.flow, at - (sent ?? floodBegan));
      lastFinal = Number.isNaN(lastFinal) ? at : Math.max(lastFinal, at);
    }
  }
  return {
    allFinalS: (lastFinal - floodBegan) / 1000,
    toFinal: distribution(latencies),
    toFinalByFlow: Object.fromEntries([...byFlow].map(([flow, samples]) => [flow, distribution(samples)])),
    unattributed,
    mismatches,
  };
}

/**
 * What it takes to replay a wrong order: its deliveries in the order they
 * were sent with what the inbox concluded of each, and the history Settle wrote.
 */
async function explain(
  pool: Pool,
  order: DrivenOrder,
  problems: string[],
  deliveries: SignedEvent[],
  history: Array<{ from_status: string; to_status: string; event_id: string | null }>,
): Promise<string> {
  const sent = deliveries.filter((d) => d.orderId === order.orderId);
  const { rows } = await pool.query<{ id: string; status: string; outcome: string | null }>(`SELECT id, status, outcome FROM webhook_events WHERE id = ANY($1)`, [
    sent.map((d) => d.id),
  ]);
  const inbox = new Map(rows.map((r) => [r.id, `${r.status}${r.outcome ? `: ${r.outcome}` : ''}`]));
  const lines = sent.map((d) => `${(JSON.parse(d.body) as { type: string }).type} ${d.id} (${inbox.get(d.id) ?? 'not stored'})`);
  const made = history.map((h) => `${h.from_status}->${h.to_status} (${h.event_id ?? 'no event'})`);
  return `${order.orderId} (${order.flow}, ${order.intentId}): ${problems.join('; ')}\n    sent: ${lines.join(', ')}\n    history: ${made.join(', ') || 'none'}`;
}

function append<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function countBy<T>(items: T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}
