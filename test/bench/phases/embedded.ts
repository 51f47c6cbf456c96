import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ServerProcess } from '../lib/processes';
import { distribution, Distribution, sleep } from '../lib/stats';
import { signatureHeader } from '../lib/stripe-events';
import { ORDER_BODY } from './orders';

export interface EmbeddedResult {
  events: number;
  /** Acks per second of the flood, while the same process applies them. */
  ingestRate: number;
  ack: Distribution;
  errors: number;
  /** From the first send until every event was applied. */
  allAppliedS: number;
  settleRate: number;
  ordersCreated: number;
  peakRssMb: number;
}

/**
 * `npm start`'s own launcher (dist-bench/src/launcher.js) with no DATABASE_URL:
 * PGlite in the app's process behind one connection. `events` orders are
 * created through POST /orders (seeding from outside would compete with the
 * app for PGlite's one session), then one signed
 * payment_intent.succeeded for each is sent over `connections` connections;
 * the settle rate is events over the time until none is left unapplied.
 */
export async function runEmbeddedPhase(options: {
  launcherScript: string;
  env: Record<string, string>;
  secret: string;
  events: number;
  connections: number;
  nodeArgs: string[];
}): Promise<EmbeddedResult> {
  const cwd = mkdtempSync(join(tmpdir(), 'settle-bench-embedded-'));
  const env = { ...options.env };
  delete env.DATABASE_URL;
  delete env.DATABASE_POOL_SIZE;
  const app = await ServerProcess.start('settle-embedded', options.launcherScript, env, { cwd, nodeArgs: options.nodeArgs, timeoutMs: 120_000 });
  try {
    const admin = { Authorization: `Bearer ${env.ADMIN_API_KEY}` };
    const orders: Array<{ id: string; intentId: string; amount: number; currency: string }> = [];
    await closedLoop(8, options.events, async () => {
      const res = await fetch(`${app.url}/orders`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: ORDER_BODY });
      if (res.status !== 201) return;
      const o = (await res.json()) as { id: string; amount: number; currency: string; payment: { id: string } };
      orders.push({ id: o.id, intentId: o.payment.id, amount: o.amount, currency: o.currency });
    });
    // The PSP's own payment_intent.created events for those orders are applied before the clock starts.
    await waitUntilApplied(app.url, admin, 120_000);

    const now = Math.floor(Date.now() / 1000);
    const bodies = orders.map((o, i) =>
      JSON.stringify({
        id: `evt_bench_embedded_${i}_${now}`,
        object: 'event',
        type: 'payment_intent.succeeded',
        created: now,
        livemode: false,
        pending_webhooks: 1,
        data: { object: { id: o.intentId, object: 'payment_intent', amount: o.amount, amount_received: o.amount, currency: o.currency, status: 'succeeded', metadata: { order_id: o.id } } },
      }),
    );
    const agent = new http.Agent({ keepAlive: true, maxSockets: options.connections });
    const latencies: number[] = [];
    let errors = 0;
    let next = 0;
    const began = performance.now();
    await closedLoop(options.connections, bodies.length, async () => {
      const body = bodies[next++] as string;
      const sent = performance.now();
      const status = await post(agent, `${app.url}/webhooks/stripe`, body, signatureHeader(body, options.secret));
      if (status >= 200 && status < 300) latencies.push(performance.now() - sent);
      else errors++;
    });
    const ingestS = (performance.now() - began) / 1000;
    agent.destroy();
    await waitUntilApplied(app.url, admin, 300_000);
    const allAppliedS = (performance.now() - began) / 1000;
    return {
      events: bodies.length,
      ingestRate: latencies.length / ingestS,
      ack: distribution(latencies),
      errors,
      allAppliedS,
      settleRate: latencies.length / allAppliedS,
      ordersCreated: orders.length,
      peakRssMb: app.peakRssMb(),
    };
  } finally {
    await app.stop();
    rmSync(cwd, { recursive: true, force: true });
  }
}

/** `workers` loops running `task` until it has run `total` times. */
async function closedLoop(workers: number, total: number, task: () => Promise<void>): Promise<void> {
  let started = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (started < total) {
        started++;
        await task();
      }
    }),
  );
}

function post(agent: http.Agent, url: string, body: string, signature: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(url, {
      method: 'POST',
      agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Stripe-Signature': signature },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** Polls the admin API until no stored event is left unapplied (received). */
async function waitUntilApplied(url: string, headers: Record<string, string>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const res = await fetch(`${url}/admin/webhook-events?status=received&limit=1`, { headers });
    if (((await res.json()) as { data: unknown[] }).data.length === 0) return;
    await sleep(50);
  }
  throw new Error(`events still unapplied after ${timeoutMs} ms`);
}
