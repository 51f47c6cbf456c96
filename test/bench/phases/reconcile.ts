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
import { ORDER_BODY } from './orders';

type Phase = <T>(label: string, run: () => Promise<T>, summary: (r: T) => string, pid?: number) => Promise<T>;

export interface PassMeasure {
  /** Requests the mock PSP served during the pass (its own counter, not the reconciler's). */
  pspCalls: number;
  reportedCalls: number;
  ms: number;
  eventsListed: number;
  stalePaymentsChecked: number;
  result: string;
}

export interface ReconcileResult {
  openOrders: number;
  warmup: PassMeasure;
  idle: { passes: PassMeasure[]; maxPspCalls: number; medianMs: number };
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
 * The reconciler against 100,000 open orders: passes with nothing new (PSP
 * calls and wall time each), then a pass that must find 1,000 payments whose
 * webhooks were never delivered. The reconciler runs in a worker-role app in
 * this process (runOnce() is not reachable over HTTP); the Settle child
 * process keeps processing the queue alongside it, as a second instance would.
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
  await phase(
    `seed ${fmt(input.open.count)} open orders (generate_series)`,
    () => seedOrders(pool, input.open.from, input.open.count),
    () => 'done',
  );
  const { rows } = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM payments WHERE status IN ('requires_payment_method', 'requires_confirmation', 'requires_action', 'processing', 'requires_capture')`,
  );
  const openOrders = Number(rows[0]?.n ?? 0);

  const { app } = await startApp(loadConfig({ ...input.env, APP_ROLE: 'worker', LOG_LEVEL: 'error' }));
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
        result: report.result,
      };
    };

    const warmup = await phase('reconciler: first pass (catches up with the PSP event log)', pass, (p) => `${p.pspCalls} PSP calls, ${ms(p.ms)}, ${p.eventsListed} events listed`);
    const idle = await phase(
      `reconciler: 3 passes with nothing new, ${fmt(openOrders)} open orders`,
      async () => {
        const passes: PassMeasure[] = [];
        for (let i = 0; i < 3; i++) passes.push(await pass());
        const sorted = passes.map((p) => p.ms).sort((a, b) => a - b);
        return { passes, maxPspCalls: Math.max(...passes.map((p) => p.pspCalls)), medianMs: sorted[1] as number };
      },
      (r) => `at most ${r.maxPspCalls} PSP calls, median ${ms(r.medianMs)} a pass`,
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
            result: report.result,
          },
          passMs,
          allPaidMs,
          unsettled: watcher.outstanding,
        };
      },
      (m) => `${m.pspCalls} PSP calls, pass ${ms(m.passMs)}, all paid after ${ms(m.allPaidMs)}, ${m.unsettled} never paid`,
    );
    return { openOrders, warmup, idle, missed };
  } finally {
    await stopApp(app);
  }
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
