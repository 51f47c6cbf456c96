import { performance } from 'node:perf_hooks';
import { Pool } from 'pg';
import Stripe from 'stripe';
import { startApp, stopApp } from '../../../src/bootstrap';
import { loadConfig } from '../../../src/config/env';
import { MockPsp } from '../../../src/mock-psp';
import { ReconcilerService } from '../../../src/reconciliation/reconciler.service';
import { seedOrders } from '../lib/db';
import { PaidWatcher } from '../lib/load';
import { fmt, ms } from '../lib/stats';
import { BENCH_AMOUNT, BENCH_CURRENCY, benchOrderId } from '../lib/stripe-events';
import { ORDER_BODY } from './orders';
import { Phase } from '../lib/phase';

/**
 * How long ago the open orders were created and their payments last checked
 * with the PSP: one hour. Older than RECONCILE_STALE_AFTER_MS (the bench keeps
 * its default, 5 min), so every payment is stale and a reconciler that polled
 * payments waiting on the customer would poll all of them. Younger than
 * ORDER_PAYMENT_TIMEOUT_MINUTES (its default, 24 h), as every open order is
 * once the expiry has taken older ones out of the open set; older orders would
 * be expired during the passes, 100 a pass each canceled at the mock, which is
 * the expiry's cost, not that of an idle pass. Checked against the config below.
 */
const SEED_AGE_MS = 60 * 60_000;

/** Open payments marked in flight for the second measurement (BENCH_IN_FLIGHT). */
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 1_000);

export interface PassMeasure {
  /** Requests the mock PSP served during the pass (its own counter, not the reconciler's). */
  pspCalls: number;
  reportedCalls: number;
  ms: number;
  eventsListed: number;
  stalePaymentsChecked: number;
  ordersExpired: number;
  result: string;
}

export interface ReconcileResult {
  openOrders: number;
  /** Of those, payments last checked with the PSP longer than RECONCILE_STALE_AFTER_MS ago. */
  staleOpenOrders: number;
  warmup: PassMeasure;
  idle: { passes: PassMeasure[]; maxPspCalls: number; medianMs: number };
  /** Open payments marked `processing` and stale, their settlement never told: passes until each was retrieved once. */
  inFlight: {
    count: number;
    passes: number;
    /** Requests the mock served over all those passes. */
    pspCalls: number;
    maxPspCallsPerPass: number;
    /** The passes run back to back, from the first until every one had been retrieved. */
    allCheckedMs: number;
    /** Default RECONCILE_INTERVAL_MS, and how long that many passes take at it. */
    intervalMs: number;
    atIntervalMs: number;
    /** Orders the retrievals found paid (all of them: the mock settled every debit). */
    paid: number;
  };
  missed: {
    count: number;
    /** PSP requests from the start of the pass until every order was paid (the pass plus any look-ups the processor made). */
    pspCalls: number;
    pass: PassMeasure;
    passMs: number;
    allPaidMs: number;
    unsettled: number;
    byRoute: Record<string, number>;
  };
}

/**
 * The reconciler against 100,000 open orders whose payments are all stale:
 * passes with nothing new (PSP calls and wall time each); then BENCH_IN_FLIGHT
 * of those payments in flight (`processing`) whose settlement was never told,
 * and the passes until every one was retrieved; then a pass that must find
 * 1,000 payments whose webhooks were never delivered. The reconciler runs in a
 * worker-role app in this process (runOnce() is not reachable over HTTP); the
 * Settle child process keeps processing the queue alongside it, as a second
 * instance would.
 */
export async function runReconcilePhase(input: {
  phase: Phase;
  mock: MockPsp;
  settleUrl: string;
  pool: Pool;
  env: Record<string, string>;
  open: { from: number; count: number };
  missed: number;
}): Promise<ReconcileResult> {
  const { phase, mock, pool } = input;
  const config = loadConfig({ ...input.env, APP_ROLE: 'worker', LOG_LEVEL: 'error' });
  if (!(config.reconcileStaleAfterMs < SEED_AGE_MS && SEED_AGE_MS < config.orderPaymentTimeoutMs)) {
    throw new Error(`seeded orders ${SEED_AGE_MS} ms old must be stale (RECONCILE_STALE_AFTER_MS ${config.reconcileStaleAfterMs}) and not yet due to expire (ORDER_PAYMENT_TIMEOUT_MINUTES = ${config.orderPaymentTimeoutMs} ms)`);
  }
  await phase(
    `seed ${fmt(input.open.count)} open orders (generate_series), created and last checked ${fmt(SEED_AGE_MS / 60_000)} min ago`,
    () => seedOrders(pool, input.open.from, input.open.count, SEED_AGE_MS),
    () => 'done',
  );
  const { rows } = await pool.query<{ open: string; stale: string }>(
    `SELECT count(*) AS open, count(*) FILTER (WHERE checked_at < now() - make_interval(secs => $1::double precision / 1000)) AS stale
       FROM payments WHERE status IN ('requires_payment_method', 'requires_confirmation', 'requires_action', 'processing', 'requires_capture', 'open')`,
    [config.reconcileStaleAfterMs],
  );
  const openOrders = Number(rows[0]?.open ?? 0);
  const staleOpenOrders = Number(rows[0]?.stale ?? 0);

  const { app } = await startApp(config);
  try {
    const reconciler = app.get(ReconcilerService);
    const pass = async (): Promise<PassMeasure> => {
      mock.resetStats();
      const began = performance.now();
      const report = await reconciler.runOnce();
      const took = performance.now() - began;
      if (report.result !== 'ok') throw new Error(`reconciler pass ${report.result}: ${report.error ?? ''}`);
      return {
        pspCalls: mock.stats().requests,
        reportedCalls: report.pspCalls,
        ms: took,
        eventsListed: report.eventsListed,
        stalePaymentsChecked: report.stalePaymentsChecked,
        ordersExpired: report.ordersExpired,
        result: report.result,
      };
    };

    const warmup = await phase('reconciler: first pass (catches up with the PSP event log)', pass, (p) => `${p.pspCalls} PSP calls, ${ms(p.ms)}, ${p.eventsListed} events listed`);
    const idle = await phase(
      `reconciler: 3 passes with nothing new, ${fmt(openOrders)} open orders, ${fmt(staleOpenOrders)} of them stale`,
      async () => {
        const passes: PassMeasure[] = [];
        for (let i = 0; i < 3; i++) passes.push(await pass());
        const sorted = passes.map((p) => p.ms).sort((a, b) => a - b);
        return { passes, maxPspCalls: Math.max(...passes.map((p) => p.pspCalls)), medianMs: sorted[1] as number };
      },
      (r) =>
        `at most ${r.maxPspCalls} PSP calls, median ${ms(r.medianMs)} a pass; ` +
        `${r.passes.reduce((n, p) => n + p.stalePaymentsChecked, 0)} payments retrieved, ${r.passes.reduce((n, p) => n + p.ordersExpired, 0)} orders expired`,
    );

    const marked = await phase(
      `mark ${fmt(IN_FLIGHT)} of them in flight: bank debits processing at the mock, settled there, the settlements never told`,
      () => markInFlight(pool, mock, input.open.from, Math.min(IN_FLIGHT, input.open.count)),
      (m) => `${fmt(m.orderIds.length)} processing in Settle, events cursor moved past their events`,
    );
    const inFlight = await phase(
      `reconciler: passes until all ${fmt(marked.orderIds.length)} in-flight payments were retrieved`,
      async () => {
        const since = (await pool.query<{ t: Date }>(`SELECT now() AS t`)).rows[0]!.t;
        const measures: PassMeasure[] = [];
        const began = performance.now();
        // Each payment is retrieved once and then leaves the in-flight set (paid), so the passes end; the bound is a guard.
        for (let checked = 0; checked < marked.orderIds.length; ) {
          if (measures.length > marked.orderIds.length + 10) throw new Error(`${checked} of ${marked.orderIds.length} in-flight payments retrieved after ${measures.length} passes`);
          const m = await pass();
          measures.push(m);
          checked += m.stalePaymentsChecked;
        }
        const allCheckedMs = performance.now() - began;
        const { rows: seen } = await pool.query<{ paid: string; unchecked: string }>(
          `SELECT count(*) FILTER (WHERE o.status = 'paid') AS paid, count(*) FILTER (WHERE p.checked_at < $2) AS unchecked
             FROM orders o JOIN payments p ON p.order_id = o.id WHERE o.id = ANY($1::uuid[])`,
          [marked.orderIds, since],
        );
        if (Number(seen[0]?.unchecked) > 0) throw new Error(`${seen[0]?.unchecked} in-flight payments were never retrieved`);
        // The bench sets RECONCILE_INTERVAL_MS high to keep the app's own timer out of the way; a deployment runs the default.
        const { RECONCILE_INTERVAL_MS: _benchOnly, ...deployed } = input.env;
        const intervalMs = loadConfig(deployed).reconcileIntervalMs;
        return {
          count: marked.orderIds.length,
          passes: measures.length,
          pspCalls: measures.reduce((n, m) => n + m.pspCalls, 0),
          maxPspCallsPerPass: Math.max(0, ...measures.map((m) => m.pspCalls)),
          allCheckedMs,
          intervalMs,
          atIntervalMs: measures.length * intervalMs,
          paid: Number(seen[0]?.paid ?? 0),
        };
      },
      (r) =>
        `${r.passes} passes, ${fmt(r.pspCalls)} PSP calls (at most ${r.maxPspCallsPerPass} a pass), all retrieved after ${ms(r.allCheckedMs)} back to back ` +
        `(${fmt(r.atIntervalMs / 60_000, 1)} min at RECONCILE_INTERVAL_MS ${fmt(r.intervalMs)}), ${fmt(r.paid)} paid`,
    );

    const created = await phase(
      `create ${fmt(input.missed)} orders and confirm their PaymentIntents at the mock, webhooks off`,
      () => createMissedPayments(input.settleUrl, mock, input.missed),
      (c) => `${fmt(c.length)} paid at the PSP, none delivered`,
    );

    const missed = await phase(
      `reconciler: pass with ${fmt(created.length)} missed payments`,
      async () => {
        const watcher = new PaidWatcher(pool, 20);
        for (const c of created) watcher.expect(c.orderId);
        mock.resetStats();
        const began = performance.now();
        await watcher.start();
        const report = await reconciler.runOnce();
        const passMs = performance.now() - began;
        if (report.result !== 'ok') throw new Error(`reconciler pass ${report.result}: ${report.error ?? ''}`);
        await watcher.drained(120_000);
        await watcher.stop();
        const stats = mock.stats();
        const allPaidMs = watcher.paidAt.size ? Math.max(...watcher.paidAt.values()) - began : NaN;
        return {
          count: created.length,
          pspCalls: stats.requests,
          byRoute: stats.byRoute,
          pass: {
            pspCalls: report.pspCalls,
            reportedCalls: report.pspCalls,
            ms: passMs,
            eventsListed: report.eventsListed,
            stalePaymentsChecked: report.stalePaymentsChecked,
            ordersExpired: report.ordersExpired,
            result: report.result,
          },
          passMs,
          allPaidMs,
          unsettled: watcher.outstanding,
        };
      },
      (m) => `${m.pspCalls} PSP calls, pass ${ms(m.passMs)}, all paid after ${ms(m.allPaidMs)}, ${m.unsettled} never paid`,
    );
    return { openOrders, staleOpenOrders, warmup, idle, inFlight, missed };
  } finally {
    await stopApp(app);
  }
}

/**
 * Orders [from, from+count) of the seeded open set become bank debits in
 * flight: a PaymentIntent each at the mock (the order's amount, its id in
 * metadata), confirmed with SEPA Direct Debit (processing, settled a moment
 * later), and in Settle the order `processing` with that payment, last
 * checked SEED_AGE_MS ago. The mock forwards no webhooks here, and the
 * reconciler's cursor is moved past these events, as if they had been
 * emitted before it: only the in-flight poll can find the settlements.
 */
async function markInFlight(pool: Pool, mock: MockPsp, from: number, count: number): Promise<{ orderIds: string[] }> {
  const stripe = new Stripe('sk_test_bench', { host: '127.0.0.1', port: mock.port, protocol: 'http', telemetry: false, maxNetworkRetries: 2 });
  const sepa = await stripe.paymentMethods.create({ type: 'sepa_debit', sepa_debit: { iban: 'DE89370400440532013000' }, billing_details: { name: 'Bench', email: 'bench@example.com' } });
  const orderIds: string[] = [];
  const intentIds: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const orderId = benchOrderId(from + next++);
      const intent = await stripe.paymentIntents.create({
        amount: BENCH_AMOUNT,
        currency: BENCH_CURRENCY,
        metadata: { order_id: orderId },
        payment_method: sepa.id,
        confirm: true,
      });
      if (intent.status !== 'processing') throw new Error(`a SEPA debit at the mock is ${intent.status}, not processing`);
      orderIds.push(orderId);
      intentIds.push(intent.id);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  await mock.idle(60_000);
  const age = `now() - make_interval(secs => $3::double precision / 1000)`;
  await pool.query(
    `UPDATE payments p SET id = v.intent_id, status = 'processing', checked_at = ${age}
       FROM unnest($1::uuid[], $2::text[]) AS v(order_id, intent_id) WHERE p.order_id = v.order_id`,
    [orderIds, intentIds, SEED_AGE_MS],
  );
  await pool.query(`UPDATE orders SET status = 'processing', updated_at = ${age.replace('$3', '$2')} WHERE id = ANY($1::uuid[])`, [orderIds, SEED_AGE_MS]);
  await pool.query(
    `INSERT INTO order_status_history (order_id, from_status, to_status, at, reason)
     SELECT id, 'pending_payment', 'processing', ${age.replace('$3', '$2')}, 'bench: seeded in flight' FROM unnest($1::uuid[]) AS id`,
    [orderIds, SEED_AGE_MS],
  );
  const newest = Math.max(0, ...mock.events().map((e) => e.created));
  await pool.query(
    `INSERT INTO reconciler_state (name, events_cursor_created) VALUES ('events', $1)
     ON CONFLICT (name) DO UPDATE SET events_cursor_created = GREATEST(reconciler_state.events_cursor_created, EXCLUDED.events_cursor_created)`,
    [newest + 1],
  );
  return { orderIds };
}

/** Real orders through POST /orders, then paid at the PSP directly (as a checkout page would) while nothing forwards webhooks. */
async function createMissedPayments(settleUrl: string, mock: MockPsp, count: number): Promise<Array<{ orderId: string; intentId: string }>> {
  mock.setForwardTo(undefined);
  const stripe = new Stripe('sk_test_bench', { host: '127.0.0.1', port: mock.port, protocol: 'http', telemetry: false, maxNetworkRetries: 2 });
  const out: Array<{ orderId: string; intentId: string }> = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const res = await fetch(`${settleUrl}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: ORDER_BODY });
      if (res.status !== 201) throw new Error(`POST /orders answered ${res.status}: ${await res.text()}`);
      const order = (await res.json()) as { id: string; payment: { id: string } };
      await stripe.paymentIntents.confirm(order.payment.id, { payment_method: 'pm_card_visa' });
      out.push({ orderId: order.id, intentId: order.payment.id });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  await mock.idle(60_000);
  return out;
}
