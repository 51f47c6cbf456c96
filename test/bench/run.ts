import 'reflect-metadata';
import { execSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Pool } from 'pg';
import Redis from 'ioredis';
import Bull from 'bull';
import { WEBHOOK_QUEUE } from '../../src/webhooks/webhook-queue';
import Stripe from 'stripe';
import { MockPsp } from '../../src/mock-psp';
import { createTestDatabase, testRedisUrl } from '../support/services';
import { applySettleSchema, inboxBacklog, removeUnpaidOrders, seedOrders } from './lib/db';
import { BENCH_METRICS_TOKEN, FloodResult, measureFlood, OrderEventReceiver, startOrderEventReceiver, undeliveredOrderEvents } from './lib/flood';
import { ClosedLoopResult, PaidWatcher, paceEvents, postEvents } from './lib/load';
import { CpuMeter, CpuUse } from './lib/cpu';
import { ServerProcess } from './lib/processes';
import { distribution, Distribution, fmt, ms, ratio, sleep, waitFor } from './lib/stats';
import { EventSource, signatureHeader } from './lib/stripe-events';
import { runOrdersPhase, OrdersResult } from './phases/orders';
import { runReconcilePhase, ReconcileResult } from './phases/reconcile';
import { runGatePhase, GateResult } from './phases/gate';
import { EmbeddedResult, runEmbeddedPhase } from './phases/embedded';
import { MixedResult, runMixedPhase } from './phases/mixed';
import { DeliveryResult, runDeliveryPhase } from './phases/delivery';

/**
 * `npm run bench`: webhook ingest, settle latency and rate, the reconciler
 * and order creation, against a raw floor and a naive baseline, in one run.
 * Every server under test runs in its own process; this process only
 * generates load, hosts the mock PSP and watches the database.
 */

const ROOT = join(__dirname, '..', '..', '..');
const num = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);

const cfg = {
  durationS: num('BENCH_DURATION_S', 10),
  warmupS: num('BENCH_WARMUP_S', 2),
  connections: num('BENCH_CONNECTIONS', 50),
  settleRate: num('BENCH_SETTLE_RATE', 500),
  floodEvents: num('BENCH_FLOOD_EVENTS', 10_000),
  openOrders: num('BENCH_OPEN_ORDERS', 100_000),
  missed: num('BENCH_MISSED', 1_000),
  orderConnections: num('BENCH_ORDER_CONNECTIONS', 4),
  ingestOrders: num('BENCH_INGEST_ORDERS', 20_000),
  /** Unpaid orders for the all-in-one process's measured run, one event each (more events than this repeat orders already paid). */
  allInOneOrders: num('BENCH_ALL_IN_ONE_ORDERS', 60_000),
  precompute: num('BENCH_PRECOMPUTE', 40_000),
  /** Unpaid orders for the gate phase's genuine events, one event each (its warm-up and all four runs draw from them in turn). */
  gateOrders: num('BENCH_GATE_ORDERS', 100_000),
  /** Connections of the junk flood in the gate phase (from 127.0.0.2, beside the genuine sender's). */
  junkConnections: num('BENCH_JUNK_CONNECTIONS', 50),
  embeddedEvents: num('BENCH_EMBEDDED_EVENTS', 2_000),
  /** Orders of the mixed flood, each driven through one payment flow at the mock (several events each). */
  mixedOrders: num('BENCH_MIXED_ORDERS', 1_000),
  /** Seed of the mixed flood's duplicates and shuffle (in the results, to replay a run's delivery order). */
  mixedSeed: num('BENCH_MIXED_SEED', randomInt(1, 2 ** 31)),
  /** Rounds of the delivery phase: in each, a flood without order events posted and one with (ABBA order). */
  deliveryRounds: num('BENCH_DELIVERY_ROUNDS', 3),
  phases: (process.env.BENCH_PHASES ?? 'ingest,settle,delivery,gate,reconcile,mixed,orders,embedded').split(',').map((s) => s.trim()),
  cpuProfile: process.env.BENCH_CPU_PROF === '1',
  appScript: process.env.BENCH_APP_SCRIPT ?? join(ROOT, 'dist-bench', 'src', 'main.js'),
  /** Diagnostics only: `api` runs Settle without its queue processor, to see the ack path alone (nothing settles then). */
  appRole: process.env.BENCH_SETTLE_ROLE ?? 'all',
  /** Diagnostics only: extra APP_ROLE=worker processes beside the app (more queue consumers); the table's numbers are for 0. */
  extraWorkers: num('BENCH_EXTRA_WORKERS', 0),
  /** Diagnostics: extra node flags for the Settle process (e.g. --trace-gc); its output is then kept in bench-results/. */
  // The app runs with the node flags of `npm run start:prod` and the Docker image.
  appNodeArgs: (process.env.BENCH_APP_NODE_ARGS ?? '--max-old-space-size=160').split(' ').filter(Boolean),
  /** Diagnosis: another build's dist-bench/src/main.js; the delivery phase then compares its floods with this build's (no order events posted). */
  compareScript: process.env.BENCH_COMPARE_SCRIPT,
  /** 1: Settle posts its order events to a local receiver (ORDER_EVENTS_URL), and the flood reports their delivery too. */
  orderEvents: process.env.BENCH_ORDER_EVENTS === '1',
};

/** Events that warm each delivery-phase process up (JIT, pools) before its measured flood. */
const DELIVERY_WARM_EVENTS = 2_000;

/**
 * The goals. Rates are ratios of the plain raw floor measured in the same run
 * (this machine's speed drifts by a quarter within an hour, so an absolute
 * rate says more about the machine than about Settle). A target whose phase
 * did not run is n/a; any other miss, or a phase that failed, makes the bench
 * exit with 2.
 */
const TARGETS = {
  /** APP_ROLE=api ingest ÷ the floor's. */
  ingestVsFloor: 0.8,
  /** APP_ROLE=api ack p99 ÷ the floor's. */
  ackP99VsFloor: 1.5,
  /** One APP_ROLE=all process, applying while it takes events: its ingest ÷ the floor's. */
  allInOneVsFloor: 1.0,
  /** The flood's settled/s ÷ the floor's ingest rate. */
  floodVsFloor: 0.8,
  settleP99Ms: 100,
  reconcileCalls: 3,
  rssMb: 200,
  gateFloodRatio: 0.8,
  /** Delivering order events: at most this share of the flood's settle rate (median of the delivery phase's rounds). */
  deliveryCost: 0.15,
};

interface IngestTarget extends ClosedLoopResult {
  warmup: ClosedLoopResult;
}

interface Results {
  ingest: { floor?: IngestTarget; floorBatched?: IngestTarget; naive?: IngestTarget; settle?: IngestTarget; settleAll?: IngestTarget; settleBacklogDrainS?: number; error?: string };
  settle: {
    paced?: { offered: number; sent: number; ok: number; errors: number; ack: Distribution; settle: Distribution; unsettled: number; maxInFlight: number };
    flood?: FloodResult;
    error?: string;
  };
  reconcile?: ReconcileResult & { error?: string };
  mixed?: MixedResult & { error?: string };
  orders?: OrdersResult & { error?: string };
  gate?: GateResult & { error?: string };
  delivery?: DeliveryResult & { error?: string };
  embedded?: EmbeddedResult & { error?: string };
  rss: { idleMb?: number; peakMb?: number; byPhaseMb: Record<string, number> };
  /** Per phase: cores the measured server used, and how busy the whole (shared) machine was. */
  cpu: Record<string, CpuUse>;
}

const cleanups: Array<() => Promise<unknown>> = [];
let progressOpen = false;
/** The process whose CPU a phase reports by default: the Settle app once it runs. */
let measuredPid: number | undefined;
const cpuByPhase: Record<string, CpuUse> = {};

/**
 * One line per phase: the label when it starts, the outcome on the same line
 * when it ends, with the CPU the server under test used and how busy the whole
 * machine was (it is shared: a busy machine makes every number worse).
 */
async function phase<T>(label: string, run: () => Promise<T>, summary: (r: T) => string, pid: number | undefined = measuredPid): Promise<T> {
  process.stdout.write(`• ${label} … `);
  progressOpen = true;
  const began = performance.now();
  const meter = new CpuMeter(pid);
  try {
    const result = await run();
    const cpu = meter.read();
    cpuByPhase[label] = cpu;
    const cores = cpu.appCores !== undefined ? `server ${fmt(cpu.appCores, 2)} cores, ` : '';
    const servers = `postgres ${fmt(cpu.postgresCores, 2)}, redis ${fmt(cpu.redisCores, 2)}, `;
    const machine = cpu.machineBusyPct !== undefined ? `machine ${fmt(cpu.machineBusyPct)}% busy` : '';
    process.stdout.write(`${summary(result)} (${fmt((performance.now() - began) / 1000, 1)} s; ${cores}${servers}${machine})\n`);
    return result;
  } catch (err) {
    process.stdout.write(`FAILED: ${(err as Error).message.split('\n')[0]}\n`);
    throw err;
  } finally {
    progressOpen = false;
  }
}

const line = (r: ClosedLoopResult) => `${fmt(r.rate)} ev/s, p50 ${ms(r.p50)}, p99 ${ms(r.p99)}, ${r.errors} errors`;

/** Resolves with the targets missed and the phases that failed (none: all met or n/a). */
async function main(): Promise<string[]> {
  if (!existsSync(cfg.appScript)) throw new Error(`${cfg.appScript} not found: build first (npm run bench does)`);
  const runTag = randomBytes(3).toString('hex');
  const secret = `whsec_bench_${randomBytes(12).toString('hex')}`;
  const queuePrefix = `settle-bench-${runTag}`;
  const results: Results = { ingest: {}, settle: {}, rss: { byPhaseMb: {} }, cpu: cpuByPhase };
  const dirtySrc = gitDirtySrc();
  console.log(
    `Settle bench ${runTag} at commit ${gitRevision() ?? '(unknown)'}` +
      (dirtySrc === undefined ? '' : dirtySrc.length > 0 ? `, with uncommitted changes in src/ (${dirtySrc.length} files, measured as they are)` : ', src/ clean'),
  );
  console.log(
    `${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), node ${process.version}; ` +
      `${cfg.durationS} s phases, ${cfg.connections} connections; phases: ${cfg.phases.join(', ')}`,
  );

  // The signer must agree with the SDK Settle verifies with, or every number below is a 400.
  const probe = JSON.stringify({ id: 'evt_probe', object: 'event', type: 'ping', created: 1, data: { object: {} } });
  new Stripe('sk_test_bench', { telemetry: false }).webhooks.constructEvent(probe, signatureHeader(probe, secret), secret);

  const mock = await MockPsp.start({ port: 0, webhookSecret: secret, timeScale: 0.01 });
  cleanups.push(() => mock.stop());
  const receiver = cfg.orderEvents ? await startOrderEventReceiver() : undefined;
  if (receiver) cleanups.push(() => receiver.server.stop());

  // Order numbers: each phase works on orders of its own.
  const ranges = {
    ingest: { from: 1, count: cfg.ingestOrders },
    paced: { from: 1_000_001, count: Math.round(cfg.settleRate * cfg.durationS) },
    flood: { from: 2_000_001, count: cfg.floodEvents },
    open: { from: 3_000_001, count: cfg.openOrders },
    allInOne: { from: 5_000_001, count: cfg.allInOneOrders },
    gate: { from: 7_000_001, count: cfg.gateOrders },
    // Each round's two floods, each with a warm-up of its own, on the delivery phase's own database.
    delivery: { from: 8_000_001 },
  };

  const settleDb = await createTestDatabase();
  cleanups.push(() => settleDb.drop());
  const settleEnv: Record<string, string> = {
    PORT: '0',
    DATABASE_URL: settleDb.url,
    REDIS_URL: testRedisUrl(),
    QUEUE_PREFIX: queuePrefix,
    STRIPE_SECRET_KEY: 'sk_test_bench',
    STRIPE_WEBHOOK_SECRET: secret,
    STRIPE_API_URL: mock.url,
    ADMIN_API_KEY: `bench-admin-${randomBytes(8).toString('hex')}`,
    METRICS_TOKEN: BENCH_METRICS_TOKEN,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_MINUTE: '100000000',
    // The bench calls the reconciler itself; the app's own timer must not run a pass in the middle of a measurement.
    RECONCILE_INTERVAL_MS: '3600000',
    APP_ROLE: cfg.appRole,
    ...(receiver ? { ORDER_EVENTS_URL: receiver.url, ORDER_EVENTS_SECRET: receiver.secret } : {}),
  };
  cleanups.push(() => cleanRedis(queuePrefix));
  const settle = await phase(
    'start Settle (child process)',
    () =>
      ServerProcess.start('settle', cfg.appScript, settleEnv, {
        nodeArgs: [...(cfg.cpuProfile ? ['--cpu-prof', '--cpu-prof-dir', join(ROOT, 'bench-results', 'profiles')] : []), ...cfg.appNodeArgs],
      }),
    (s) => `pid ${s.pid} at ${s.url}, RSS ${fmt(s.rssMb())} MB`,
  );
  cleanups.push(() => settle.stop());
  measuredPid = settle.pid;
  for (let i = 0; i < cfg.extraWorkers; i++) {
    const worker = await ServerProcess.start(`worker${i}`, cfg.appScript, { ...settleEnv, APP_ROLE: 'worker' }, { ready: /Settle \(worker\) started()/ });
    cleanups.push(() => worker.stop());
  }
  await sleep(500);
  results.rss.idleMb = settle.rssMb();
  const settlePool = new Pool({ connectionString: settleDb.url, max: 4 });
  cleanups.push(() => settlePool.end());
  await phase(
    'seed orders for ingest and settle',
    async () => {
      for (const r of [ranges.ingest, ranges.paced, ranges.flood]) await seedOrders(settlePool, r.from, r.count);
      return ranges.ingest.count + ranges.paced.count + ranges.flood.count;
    },
    (n) => `${fmt(n)} orders`,
  );
  const markRss = (name: string) => (results.rss.byPhaseMb[name] = settle.peakRssMb());

  if (cfg.phases.includes('ingest')) {
    try {
      await runIngest(results, settle, settlePool, secret, runTag, ranges.ingest, ranges.allInOne, settleEnv);
    } catch (err) {
      results.ingest.error = (err as Error).message;
    }
    markRss('ingest');
  }

  if (cfg.phases.includes('settle') && !cfg.phases.includes('ingest')) {
    // The flood's target is a ratio of the plain floor's ingest: without the ingest phase, the floor alone.
    try {
      await runBaseline(results, 'floor', "raw floor (the flood target's reference)", secret, runTag, ranges.ingest);
    } catch (err) {
      results.ingest.error = (err as Error).message;
    }
  }

  if (cfg.phases.includes('settle')) {
    try {
      await runSettle(results, settle, settlePool, secret, runTag, ranges, receiver);
    } catch (err) {
      results.settle.error = (err as Error).message;
    }
    markRss('settle');
  }

  if (cfg.phases.includes('delivery')) {
    const deliveryPrefix = `${queuePrefix}-delivery`;
    cleanups.push(() => cleanRedis(deliveryPrefix));
    try {
      const { ORDER_EVENTS_URL: _url, ORDER_EVENTS_SECRET: _secret, ...plainEnv } = settleEnv;
      results.delivery = await runDeliveryPhase({
        phase,
        appScript: cfg.appScript,
        nodeArgs: cfg.appNodeArgs,
        env: plainEnv,
        queuePrefix: deliveryPrefix,
        secret,
        runTag,
        rounds: cfg.deliveryRounds,
        floodEvents: cfg.floodEvents,
        warmEvents: DELIVERY_WARM_EVENTS,
        connections: cfg.connections,
        orderFrom: ranges.delivery.from,
        compareScript: cfg.compareScript,
      });
    } catch (err) {
      results.delivery = { error: (err as Error).message } as Results['delivery'];
    }
  }

  if (cfg.phases.includes('gate')) {
    try {
      // Its genuine events each pay an order of their own, as a shop's would: an event for an order already
      // paid is applied as a no-op, which would leave the junk flood more of the machine than it gets in earnest.
      await seedOrders(settlePool, ranges.gate.from, ranges.gate.count);
      await settlePool.query('VACUUM ANALYZE orders, payments');
      results.gate = await phase(
        `genuine events (each paying an unpaid order) alone and beside a junk flood (${cfg.junkConnections} connections from another address), ${cfg.connections} connections, 2 × ${cfg.durationS / 2} s each`,
        () => runGatePhase({ settleUrl: settle.url, pid: settle.pid, pool: settlePool, secret, runTag, orders: ranges.gate, connections: cfg.connections, junkConnections: cfg.junkConnections, durationS: cfg.durationS / 2, rounds: 2, warmupS: cfg.warmupS }),
        (r) =>
          `${fmt(r.aloneRate)} ev/s alone, ${fmt(r.floodedRate)} ev/s flooded = ${fmt(r.ratio, 2)}x, ${r.floodedErrors} errors; ` +
          (r.ordersRepeated > 0 ? `${fmt(r.ordersRepeated)} events repeated an order already paid (raise BENCH_GATE_ORDERS); ` : '') +
          `junk ${fmt(r.junk.perSecond)}/s ${JSON.stringify(r.junk.byStatus)}; Settle CPU ${fmt(r.serverUsPerGenuine)} µs a genuine event, ${fmt(r.serverUsPerJunk)} µs a junk one`,
      );
    } catch (err) {
      results.gate = { error: (err as Error).message } as Results['gate'];
    }
    // Its orders no event reached would be open orders in the reconciler's phase, which counts its own.
    await removeUnpaidOrders(settlePool, ranges.gate.from, ranges.gate.count).catch(() => undefined);
    markRss('gate');
  }

  if (cfg.phases.includes('reconcile')) {
    try {
      results.reconcile = await runReconcilePhase({
        phase,
        mock,
        settleUrl: settle.url,
        pool: settlePool,
        env: settleEnv,
        open: ranges.open,
        missed: cfg.missed,
      });
    } catch (err) {
      results.reconcile = { error: (err as Error).message } as Results['reconcile'];
    }
    markRss('reconcile');
  }

  // After the reconciler's phase: the events the mixed flood leaves at the mock would otherwise sit in
  // the window the reconciler's idle passes list again, and cost them calls that are not theirs.
  if (cfg.phases.includes('mixed')) {
    try {
      results.mixed = await runMixedPhase({
        phase,
        mock,
        settleUrl: settle.url,
        pool: settlePool,
        secret,
        orders: cfg.mixedOrders,
        connections: cfg.connections,
        seed: cfg.mixedSeed,
      });
    } catch (err) {
      results.mixed = { error: (err as Error).message } as Results['mixed'];
    }
    markRss('mixed');
  }

  if (cfg.phases.includes('orders')) {
    try {
      results.orders = await phase(
        `POST /orders, ${cfg.orderConnections} connections, ${cfg.durationS} s`,
        () => runOrdersPhase(settle.url, mock, cfg.orderConnections, cfg.durationS),
        (r) => `${fmt(r.rate)} orders/s, p50 ${ms(r.p50)}, p99 ${ms(r.p99)}, ${r.errors} errors, ${fmt(r.pspCallsPerOrder, 1)} PSP calls/order`,
      );
    } catch (err) {
      results.orders = { error: (err as Error).message } as Results['orders'];
    }
    markRss('orders');
  }

  if (cfg.phases.includes('embedded')) {
    // A queue of its own: the PostgreSQL-backed process would take its jobs and find no such events.
    cleanups.push(() => cleanRedis(`${queuePrefix}-embedded`));
    try {
      results.embedded = await phase(
        `npm start on embedded PGlite: ${fmt(cfg.embeddedEvents)} orders, then their events at ${cfg.connections} connections`,
        // As `npm start` runs it: no heap cap (PGlite's WASM memory is part of the process).
        () => runEmbeddedPhase({ launcherScript: join(ROOT, 'dist-bench', 'src', 'launcher.js'), env: { ...settleEnv, QUEUE_PREFIX: `${queuePrefix}-embedded` }, secret, events: cfg.embeddedEvents, connections: cfg.connections, nodeArgs: [] }),
        (r) => `ingest ${fmt(r.ingestRate)} ev/s (p99 ${ms(r.ack.p99)}, ${r.errors} errors); all applied after ${fmt(r.allAppliedS, 1)} s = ${fmt(r.settleRate)} settled/s`,
        undefined,
      );
    } catch (err) {
      results.embedded = { error: (err as Error).message } as Results['embedded'];
    }
  }

  results.rss.peakMb = settle.peakRssMb();
  if (cfg.appNodeArgs.length > 0) {
    mkdirSync(join(ROOT, 'bench-results'), { recursive: true });
    writeFileSync(join(ROOT, 'bench-results', `settle-${runTag}.log`), settle.log);
  }
  await phase('stop Settle', () => settle.stop(), () => (cfg.cpuProfile ? 'CPU profile in bench-results/profiles/' : 'stopped'));

  return report(results, runTag);
}

async function runIngest(
  results: Results,
  settle: ServerProcess,
  settlePool: Pool,
  secret: string,
  runTag: string,
  orders: { from: number; count: number },
  unpaidOrders: { from: number; count: number },
  settleEnv: Record<string, string>,
): Promise<void> {
  await runBaseline(results, 'floor', 'raw floor', secret, runTag, orders);
  await runBaseline(results, 'floorBatched', 'batched floor (group commit)', secret, runTag, orders);
  await runBaseline(results, 'naive', 'naive', secret, runTag, orders);
  // Compared with the floor: an APP_ROLE=api process, the receive path as deployed. The floor applies
  // nothing, so neither does anything else meanwhile: the queue is paused (jobs still go in) and the main
  // process's worker applies them afterwards.
  const api = await ServerProcess.start('settle-api', cfg.appScript, { ...settleEnv, APP_ROLE: 'api' }, { nodeArgs: cfg.appNodeArgs });
  const queue = new Bull(WEBHOOK_QUEUE, settleEnv.REDIS_URL as string, { prefix: settleEnv.QUEUE_PREFIX });
  try {
    await queue.pause();
    results.ingest.settle = await ingestAgainst('ingest Settle (APP_ROLE=api, queue paused)', api.url, secret, `${runTag}settle`, orders, api.pid);
  } finally {
    await queue.resume().catch(() => undefined);
    await queue.close().catch(() => undefined);
    await api.stop();
  }
  // The api process's events are applied first: the all-in-one process is measured applying what it takes, not that backlog too.
  if (cfg.appRole !== 'api') {
    const began = performance.now();
    results.ingest.settleBacklogDrainS = await settleDown(settlePool, 'the api ingest', () => (performance.now() - began) / 1000);
  }
  // Seeded here, not with the others: writing them just before the floor's phase would have the floor share the machine with their autovacuum.
  await seedOrders(settlePool, unpaidOrders.from, unpaidOrders.count);
  await settlePool.query('VACUUM ANALYZE orders, payments');
  // The same load on the main process, which applies events while it takes them, on the same 2 cores. Its
  // measured events each pay an order of their own: the orders above were paid by the api phase's backlog, and
  // applying an event for a paid order changes nothing (no order, payment, history or order-event write).
  results.ingest.settleAll = await ingestAgainst(
    `ingest Settle (APP_ROLE=${cfg.appRole}, each event paying an unpaid order)`,
    settle.url,
    secret,
    `${runTag}settleall`,
    unpaidOrders,
    settle.pid,
    orders,
  );
  const repeated = Math.max(0, results.ingest.settleAll.ok - unpaidOrders.count);
  if (repeated > 0) console.log(`  (${fmt(repeated)} of its events repeated an order already paid: raise BENCH_ALL_IN_ONE_ORDERS)`);
  // The queue holds what was acked but not yet applied; later phases need a quiet app.
  if (cfg.appRole === 'api') return;
  await settleDown(settlePool, 'the all-in-one ingest', () => 0);
  // Its orders that no event reached would be open orders in the reconciler's phase, which counts its own.
  await removeUnpaidOrders(settlePool, unpaidOrders.from, unpaidOrders.count);
}

/**
 * Waits until every stored event is applied, then VACUUM ANALYZEs the tables
 * a phase churns, so the next phase does not pay for the autovacuum the last
 * one's hundred thousand row versions start (it doubled PostgreSQL's CPU in a
 * flood that followed the ingest phases). Returns `measure()` taken once drained.
 */
async function settleDown(pool: Pool, what: string, measure: () => number): Promise<number> {
  return phase(
    `Settle: apply ${what}'s backlog, then VACUUM ANALYZE`,
    async () => {
      const drained = await waitFor(async () => (await inboxBacklog(pool)) === 0, 180_000, 250);
      if (!drained) throw new Error(`backlog of ${await inboxBacklog(pool)} events after 180 s`);
      const value = measure();
      await pool.query('VACUUM (ANALYZE) webhook_events, orders, payments, order_status_history, order_events, order_event_deliveries');
      return value;
    },
    (s) => `drained${s ? ` in ${fmt(s, 1)} s` : ''}`,
  );
}

const BASELINE_SCRIPTS = { floor: 'floor.js', floorBatched: 'floor-batched.js', naive: 'naive.js' } as const;

/** One baseline server in its own process on a database of its own with Settle's schema and the same seeded orders, under the ingest load. */
async function runBaseline(
  results: Results,
  name: keyof typeof BASELINE_SCRIPTS,
  label: string,
  secret: string,
  runTag: string,
  orders: { from: number; count: number },
): Promise<void> {
  const redisUrl = testRedisUrl();
  // Where a floor pushes its event ids (the naive baseline pushes none).
  const queueKey = `settle-bench-${runTag}:${name}`;
  const db = await createTestDatabase();
  try {
    await applySettleSchema(db.url);
    const pool = new Pool({ connectionString: db.url, max: 2 });
    await seedOrders(pool, orders.from, orders.count);
    await pool.end();
    const server = await ServerProcess.start(name, join(__dirname, 'servers', BASELINE_SCRIPTS[name]), {
      DATABASE_URL: db.url,
      REDIS_URL: redisUrl,
      WEBHOOK_SECRET: secret,
      POOL_SIZE: '20',
      PORT: '0',
      QUEUE_KEY: queueKey,
    });
    try {
      results.ingest[name] = await ingestAgainst(`ingest ${label}`, server.url, secret, `${runTag}${name}`, orders, server.pid);
    } finally {
      await server.stop();
    }
  } finally {
    await db.drop();
    const redis = new Redis(redisUrl);
    await redis.del(queueKey).catch(() => undefined);
    redis.disconnect();
  }
}

/** A short warm-up (JIT, pools), then the measured closed-loop run, each with unique signed events. */
async function ingestAgainst(
  label: string,
  url: string,
  secret: string,
  tag: string,
  orders: { from: number; count: number },
  pid: number,
  /** Orders for the warm-up's events when they must not be `orders` (default: the same). */
  warmOrders = orders,
): Promise<IngestTarget> {
  return phase(
    `${label}: ${cfg.connections} connections, ${cfg.durationS} s`,
    async () => {
      const warmSource = new EventSource(`${tag}w`, secret, warmOrders.from, warmOrders.count, 0);
      const warmup = await postEvents(url, warmSource, { connections: cfg.connections, durationS: cfg.warmupS });
      const source = new EventSource(tag, secret, orders.from, orders.count, cfg.precompute);
      const measured = await postEvents(url, source, { connections: cfg.connections, durationS: cfg.durationS });
      return { ...measured, warmup };
    },
    line,
    pid,
  );
}

async function runSettle(
  results: Results,
  settle: ServerProcess,
  pool: Pool,
  secret: string,
  runTag: string,
  ranges: { paced: { from: number; count: number }; flood: { from: number; count: number } },
  receiver?: OrderEventReceiver,
): Promise<void> {
  results.settle.paced = await phase(
    `settle at an offered ${cfg.settleRate} ev/s for ${cfg.durationS} s (open loop)`,
    async () => {
      const watcher = new PaidWatcher(pool, 10);
      await watcher.start();
      const source = new EventSource(`${runTag}paced`, secret, ranges.paced.from, ranges.paced.count, ranges.paced.count);
      const paced = await paceEvents(settle.url, source, cfg.settleRate, cfg.durationS, (e) => watcher.expect(e.orderId));
      await watcher.drained(60_000);
      await watcher.stop();
      const latencies: number[] = [];
      for (const [orderId, ackAt] of paced.ackAt) {
        const paidAt = watcher.paidAt.get(orderId);
        if (paidAt !== undefined) latencies.push(paidAt - ackAt);
      }
      const { ackAt: _acks, ...rest } = paced;
      return { ...rest, settle: distribution(latencies), unsettled: watcher.outstanding };
    },
    (r) => `ack p99 ${ms(r.ack.p99)}; ack→paid p50 ${ms(r.settle.p50)}, p99 ${ms(r.settle.p99)}; ${r.errors} errors, ${r.unsettled} never paid`,
  );
  await waitFor(async () => (await inboxBacklog(pool)) === 0, 60_000, 100);
  // The flood's deliveries are measured alone: what earlier phases wrote goes out first.
  if (receiver) await waitFor(async () => (await undeliveredOrderEvents(pool)) === 0, 120_000, 100);

  results.settle.flood = await phase(
    `settle flood: ${fmt(cfg.floodEvents)} events at ${cfg.connections} connections`,
    () => measureFlood({ url: settle.url, pool, source: new EventSource(`${runTag}flood`, secret, ranges.flood.from, ranges.flood.count, ranges.flood.count), events: cfg.floodEvents, connections: cfg.connections, receiver }),
    (r) =>
      `ingest ${fmt(r.ingest.rate)} ev/s; all paid after ${fmt(r.allPaidS, 1)} s = ${fmt(r.rate)} settled/s; ` +
      `apply ${ms(r.meanApplyMs)} mean, ${fmt(r.meanJobsInFlight, 1)} jobs in flight, ${fmt(r.meanBatchSize, 1)} events a batch; ` +
      `WAL ${fmt(r.walBytesPerEvent)} bytes an event; ${r.unsettled} never paid` +
      (r.orderEvents
        ? `; order events: ${fmt(r.orderEvents.delivered)} delivered in ${fmt(r.orderEvents.allDeliveredS, 1)} s = ${fmt(r.orderEvents.rate)}/s, ` +
          `commit→receiver p50 ${ms(r.orderEvents.age.p50)}, p99 ${ms(r.orderEvents.age.p99)}, ${r.orderEvents.undelivered} undelivered, ${r.orderEvents.badSignatures} bad signatures`
        : ''),
  );
}

async function cleanRedis(prefix: string): Promise<void> {
  const redis = new Redis(testRedisUrl());
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

type Row = [string, string, string, string, string, string, string];

/** One target: met (true), missed (false) or n/a (undefined, with why). */
interface Check {
  ok: boolean | undefined;
  /** What was measured against the target, for the list under the table. */
  measured: string;
  /** Why it is n/a when its phase ran. */
  naBecause?: string;
}

/** Prints the table and the verdicts, writes the results file; returns the targets missed and the phases that failed. */
function report(r: Results, runTag: string): string[] {
  const { floor, floorBatched, naive, settle, settleAll } = r.ingest;
  const x = (v: number) => (Number.isFinite(v) ? `${fmt(v, 2)}x` : '–');
  const over = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined ? ratio(a, b) : NaN);
  const paced = r.settle.paced;
  const flood = r.settle.flood;
  const rec = r.reconcile;
  const mixed = r.mixed;
  const dlv = r.delivery;
  const pct = (v: number) => (Number.isFinite(v) ? `${fmt(v * 100)} %` : '–');
  const orders = r.orders;
  const emb = r.embedded;
  const noFloor = 'the floor is measured by the ingest phase';
  const judged = (v: number, ok: (v: number) => boolean, measured: string, naBecause?: string): Check =>
    Number.isFinite(v) ? { ok: ok(v), measured } : { ok: undefined, measured: '–', naBecause };

  const checks: Record<string, Check & { target: string }> = {
    ingest: {
      target: `Ingest (APP_ROLE=api) >= ${TARGETS.ingestVsFloor.toFixed(1)}x floor`,
      ...judged(over(settle?.rate, floor?.rate), (v) => v >= TARGETS.ingestVsFloor, `${x(over(settle?.rate, floor?.rate))} (${fmt(settle?.rate)} against ${fmt(floor?.rate)} ev/s)`),
    },
    ackP99: {
      target: `Ack p99 (APP_ROLE=api) <= ${TARGETS.ackP99VsFloor.toFixed(1)}x floor`,
      ...judged(over(settle?.p99, floor?.p99), (v) => v <= TARGETS.ackP99VsFloor, `${x(over(settle?.p99, floor?.p99))} (${ms(settle?.p99)} against ${ms(floor?.p99)})`),
    },
    allInOne: {
      target: `Ingest of one APP_ROLE=${cfg.appRole} process applying too >= ${TARGETS.allInOneVsFloor.toFixed(1)}x floor`,
      ...judged(over(settleAll?.rate, floor?.rate), (v) => v >= TARGETS.allInOneVsFloor, `${x(over(settleAll?.rate, floor?.rate))} (${fmt(settleAll?.rate)} against ${fmt(floor?.rate)} ev/s)`),
    },
    settleP99: {
      target: `Ack→paid p99 @ ${cfg.settleRate}/s offered <= ${TARGETS.settleP99Ms} ms, all paid`,
      ok: paced ? paced.settle.p99 <= TARGETS.settleP99Ms && paced.unsettled === 0 : undefined,
      measured: paced ? `${ms(paced.settle.p99)}, ${paced.unsettled} never paid` : '–',
    },
    flood: {
      target: `Flood settled/s >= ${TARGETS.floodVsFloor.toFixed(1)}x floor ingest, all paid`,
      ...(flood
        ? judged(
            over(flood.rate, floor?.rate),
            (v) => v >= TARGETS.floodVsFloor && flood.unsettled === 0,
            `${x(over(flood.rate, floor?.rate))} (${fmt(flood.rate)}/s against ${fmt(floor?.rate)} ev/s), ${flood.unsettled} never paid`,
            noFloor,
          )
        : { ok: undefined, measured: '–' }),
    },
    mixedCorrect: {
      target: 'Mixed flood correct: every order at the PSP-implied status, history once, refunds right, every event applied',
      ok: mixed?.mismatches ? mixed.mismatches.orders === 0 && mixed.dead === 0 && mixed.missing === 0 : undefined,
      measured: mixed?.mismatches ? `${mixed.mismatches.orders} of ${fmt(mixed.orders)} orders wrong, ${mixed.dead} events dead, ${mixed.missing} never stored` : '–',
    },
    reconcile: {
      target: `Reconcile idle pass <= ${TARGETS.reconcileCalls} PSP calls`,
      ok: rec?.idle ? rec.idle.maxPspCalls <= TARGETS.reconcileCalls : undefined,
      measured: rec?.idle ? `${rec.idle.maxPspCalls} calls` : '–',
    },
    gateFlood: {
      target: `Genuine acks beside a junk flood >= ${TARGETS.gateFloodRatio}x alone, none refused`,
      ...(r.gate?.rounds ? judged(r.gate.ratio, (v) => v >= TARGETS.gateFloodRatio && r.gate?.floodedErrors === 0, `${x(r.gate.ratio)}, ${r.gate.floodedErrors} errors`) : { ok: undefined, measured: '–' }),
    },
    deliveryCost: {
      target: `Delivering order events costs the flood's settle rate <= ${fmt(TARGETS.deliveryCost * 100)} % (median of ${cfg.deliveryRounds} rounds)`,
      ok: dlv?.rounds && !cfg.compareScript ? dlv.medianCost <= TARGETS.deliveryCost && dlv.undelivered === 0 && dlv.badSignatures === 0 : undefined,
      measured: dlv?.rounds ? `${pct(dlv.medianCost)} (rounds: ${dlv.rounds.map((d) => pct(d.cost)).join(', ')}), ${dlv.undelivered} undelivered, ${dlv.badSignatures} bad signatures` : '–',
    },
    rss: {
      target: `Peak RSS (Settle process) <= ${TARGETS.rssMb} MB`,
      ok: r.rss.peakMb !== undefined ? r.rss.peakMb <= TARGETS.rssMb : undefined,
      measured: `${fmt(r.rss.peakMb)} MB`,
    },
  };
  const verdict = (c: Check) => (c.ok === undefined ? 'n/a' : c.ok ? 'MET' : 'MISSED');
  const ratios = (v: number | undefined): [string, string, string] => [x(over(v, floor?.rate)), x(over(v, floorBatched?.rate)), x(over(v, naive?.rate))];

  const rows: Row[] = [
    ['Ingest events/s (50 conn, APP_ROLE=api)', fmt(settle?.rate), fmt(floor?.rate), fmt(floorBatched?.rate), fmt(naive?.rate), `>= ${TARGETS.ingestVsFloor.toFixed(1)}x floor`, verdict(checks.ingest)],
    ['  Settle ÷ each', '', ...ratios(settle?.rate), '', ''],
    ['Ack latency p50', ms(settle?.p50), ms(floor?.p50), ms(floorBatched?.p50), ms(naive?.p50), '', ''],
    ['Ack latency p99', ms(settle?.p99), ms(floor?.p99), ms(floorBatched?.p99), ms(naive?.p99), `<= ${TARGETS.ackP99VsFloor.toFixed(1)}x floor`, verdict(checks.ackP99)],
    ['  Settle ÷ each', '', x(over(settle?.p99, floor?.p99)), x(over(settle?.p99, floorBatched?.p99)), x(over(settle?.p99, naive?.p99)), '', ''],
    ['Ingest errors (non-2xx)', fmt(settle?.errors), fmt(floor?.errors), fmt(floorBatched?.errors), fmt(naive?.errors), '0', ''],
    [`Ingest events/s, one APP_ROLE=${cfg.appRole} process applying too (each pays an order)`, fmt(settleAll?.rate), '', '', '', `>= ${TARGETS.allInOneVsFloor.toFixed(1)}x floor`, verdict(checks.allInOne)],
    ['  ÷ each', '', ...ratios(settleAll?.rate), '', ''],
    [`  its ack p50 / p99`, settleAll ? `${ms(settleAll.p50)} / ${ms(settleAll.p99)}` : '–', '', '', '', '', ''],
    [`Ack→paid p50 @ ${cfg.settleRate}/s offered`, ms(paced?.settle.p50), '', '', '', '', ''],
    [`Ack→paid p99 @ ${cfg.settleRate}/s offered`, ms(paced?.settle.p99), '', '', '', `<= ${TARGETS.settleP99Ms} ms`, verdict(checks.settleP99)],
    [
      `Sustained settle (flood ${fmt(flood?.events ?? cfg.floodEvents)})${cfg.orderEvents ? ', order events posted' : ''}`,
      flood ? `${fmt(flood.rate)}/s` : '–',
      '',
      '',
      '',
      `>= ${TARGETS.floodVsFloor.toFixed(1)}x floor ingest`,
      verdict(checks.flood),
    ],
    ['  ÷ each one\'s ingest', '', ...ratios(flood?.rate), '', ''],
    ['  WAL written per event (whole server)', flood?.walBytesPerEvent !== undefined ? `${fmt(flood.walBytesPerEvent)} bytes` : '–', '', '', '', '', ''],
    ...(cfg.orderEvents
      ? ([
          ['  order events delivered/s (flood)', flood?.orderEvents ? `${fmt(flood.orderEvents.rate)}/s` : '–', '', '', '', '', ''],
          ['  order event commit→receiver p50 / p99', flood?.orderEvents ? `${ms(flood.orderEvents.age.p50)} / ${ms(flood.orderEvents.age.p99)}` : '–', '', '', '', '', ''],
        ] as Row[])
      : []),
    [
      cfg.compareScript
        ? `Flood settled/s, this build / BENCH_COMPARE_SCRIPT's (${dlv?.rounds?.length ?? cfg.deliveryRounds} rounds, ABBA)`
        : `Flood settled/s with order events posted / without (${dlv?.rounds?.length ?? cfg.deliveryRounds} rounds, ABBA)`,
      dlv?.rounds ? dlv.rounds.map((d) => `${fmt(d.with.rate)} / ${fmt(d.without.rate)}`).join(', ') : '–',
      '',
      '',
      '',
      '',
      '',
    ],
    [
      cfg.compareScript ? '  1 - this ÷ that, each round (median; below 0: this build is faster)' : '  cost: 1 - with ÷ without, each round (median)',
      dlv?.rounds ? `${dlv.rounds.map((d) => pct(d.cost)).join(', ')} (${pct(dlv.medianCost)})` : '–',
      '',
      '',
      '',
      `<= ${fmt(TARGETS.deliveryCost * 100)} %`,
      verdict(checks.deliveryCost),
    ],
    [
      '  order events delivered/s, commit→receiver p50 / p99 (medians)',
      dlv?.rounds ? `${fmt(dlv.deliveredPerS)}/s, ${ms(dlv.ageP50Ms)} / ${ms(dlv.ageP99Ms)}, ${dlv.undelivered} undelivered` : '–',
      '',
      '',
      '',
      '',
      '',
    ],
    [
      `Mixed flood (${fmt(mixed?.orders ?? cfg.mixedOrders)} orders${mixed?.deliveries ? `, ${fmt(mixed.deliveries)} deliveries` : ''}, 10 % twice, shuffled): ingest`,
      mixed?.ingest ? `${fmt(mixed.ingest.rate)} ev/s, ${mixed.ingest.errors} errors` : '–',
      '',
      '',
      '',
      '',
      '',
    ],
    ['  events applied/s (inbox)', mixed?.ingest ? `${fmt(mixed.settledRate)}/s (${fmt(mixed.applied)} in ${fmt(mixed.allAppliedS, 1)} s)` : '–', '', '', '', '', ''],
    ['  time to final status p50 / p99', mixed?.ingest ? `${ms(mixed.toFinal.p50)} / ${ms(mixed.toFinal.p99)}, all after ${fmt(mixed.allFinalS, 1)} s` : '–', '', '', '', '', ''],
    ['  orders right (status, history, refunds)', mixed?.mismatches ? `${fmt(mixed.orders - mixed.mismatches.orders)} of ${fmt(mixed.orders)}` : '–', '', '', '', 'all', verdict(checks.mixedCorrect)],
    [`Reconcile, nothing new, ${fmt(rec?.openOrders ?? cfg.openOrders)} open, ${fmt(rec?.staleOpenOrders)} stale`, rec?.idle ? `${rec.idle.maxPspCalls} calls, ${ms(rec.idle.medianMs)}` : '–', '', '', '', `<= ${TARGETS.reconcileCalls} PSP calls`, verdict(checks.reconcile)],
    [
      `Reconcile, ${fmt(rec?.inFlight?.count)} in flight: until all retrieved`,
      rec?.inFlight ? `${rec.inFlight.passes} passes, ${fmt(rec.inFlight.pspCalls)} calls, ${ms(rec.inFlight.allCheckedMs)}` : '–',
      '',
      '',
      '',
      '',
      '',
    ],
    [`  at RECONCILE_INTERVAL_MS ${fmt(rec?.inFlight?.intervalMs)}`, rec?.inFlight ? `${fmt(rec.inFlight.atIntervalMs / 60_000, 1)} min` : '–', '', '', '', '', ''],
    [
      `Reconcile, ${fmt(rec?.missed?.count ?? cfg.missed)} missed`,
      rec?.missed ? `${rec.missed.pspCalls} calls, pass ${ms(rec.missed.passMs)}, all paid ${ms(rec.missed.allPaidMs)}` : '–',
      '',
      '',
      '',
      '',
      '',
    ],
    [
      'Genuine acks/s beside a junk flood / alone',
      r.gate?.rounds ? `${fmt(r.gate.floodedRate)} / ${fmt(r.gate.aloneRate)} = ${x(r.gate.ratio)}, ${r.gate.floodedErrors} errors` : '–',
      '',
      '',
      '',
      `>= ${TARGETS.gateFloodRatio}x`,
      verdict(checks.gateFlood),
    ],
    [`Embedded PGlite (npm start): ingest, applying too`, emb?.ingestRate !== undefined ? `${fmt(emb.ingestRate)} ev/s, p99 ${ms(emb.ack.p99)}` : '–', '', '', '', '', ''],
    [`Embedded PGlite: settle (flood ${fmt(emb?.events ?? cfg.embeddedEvents)})`, emb?.settleRate !== undefined ? `${fmt(emb.settleRate)}/s, peak RSS ${fmt(emb.peakRssMb)} MB` : '–', '', '', '', '', ''],
    ['POST /orders', orders?.rate !== undefined ? `${fmt(orders.rate)}/s, p99 ${ms(orders.p99)}` : '–', '', '', '', '', ''],
    ['Peak RSS (Settle process)', r.rss.peakMb !== undefined ? `${fmt(r.rss.peakMb)} MB` : '–', '', '', '', `<= ${TARGETS.rssMb} MB`, verdict(checks.rss)],
  ];
  const header: Row = ['Measure', 'Settle', 'Raw floor', 'Batched floor', 'Naive', 'Target', 'Status'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]?.length ?? 0)));
  const render = (row: Row) => `| ${row.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  console.log('');
  console.log(render(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of rows) console.log(render(row));

  const failedPhases = (
    [
      ['ingest', r.ingest.error],
      ['settle', r.settle.error],
      ['mixed', r.mixed?.error],
      ['reconcile', r.reconcile?.error],
      ['orders', r.orders?.error],
      ['gate', r.gate?.error],
      ['delivery', r.delivery?.error],
      ['embedded', r.embedded?.error],
    ] as Array<[string, string | undefined]>
  ).filter((e): e is [string, string] => Boolean(e[1]));
  for (const [name, error] of failedPhases) console.log(`\n${name} phase failed: ${error}`);
  if (mixed?.mismatches?.examples.length) console.log(`\nMixed flood, orders not where the PSP says:\n  ${mixed.mismatches.examples.join('\n  ')}`);

  const all = Object.values(checks);
  const missed = all.filter((c) => c.ok === false);
  console.log(`\nTargets: ${all.filter((c) => c.ok === true).length} met, ${missed.length} missed, ${all.filter((c) => c.ok === undefined).length} n/a${failedPhases.length ? `; ${failedPhases.length} phase(s) failed` : ''}`);
  for (const c of all) {
    if (c.ok === false) console.log(`  MISSED  ${c.target}: ${c.measured}`);
    else if (c.ok === undefined && c.naBecause && c.measured === '–') console.log(`  n/a     ${c.target}: ${c.naBecause}`);
  }
  for (const [name] of failedPhases) console.log(`  FAILED  the ${name} phase`);
  const failures = [...missed.map((c) => `missed: ${c.target}`), ...failedPhases.map(([name]) => `failed: ${name} phase`)];

  mkdirSync(join(ROOT, 'bench-results'), { recursive: true });
  const file = join(ROOT, 'bench-results', `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        run: runTag,
        at: new Date().toISOString(),
        commit: gitRevision(),
        // The bench builds the working tree: uncommitted changes under src/ are part of what was measured.
        uncommittedSrc: gitDirtySrc(),
        machine: { cores: os.cpus().length, cpu: os.cpus()[0]?.model.trim(), memoryGb: Math.round(os.totalmem() / 2 ** 30), node: process.version, loadavg: os.loadavg() },
        config: cfg,
        targets: TARGETS,
        verdicts: checks,
        failures,
        results: r,
        table: [header, ...rows],
      },
      null,
      2,
    ),
  );
  console.log(`\nResults: ${file}`);
  return failures;
}

function gitDirtySrc(): string[] | undefined {
  try {
    const out = execSync('git status --porcelain -- src', { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    return out.split('\n').filter(Boolean);
  } catch {
    return undefined;
  }
}

function gitRevision(): string | undefined {
  try {
    return execSync('git rev-parse --short HEAD', { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return undefined;
  }
}

async function cleanup(): Promise<void> {
  for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
}

let interrupted = false;
process.on('SIGINT', () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  if (progressOpen) process.stdout.write('\n');
  console.log('interrupted: stopping servers and dropping the bench databases');
  void cleanup().then(() => process.exit(130));
});

// 0: every target met or n/a; 2: a target missed or a phase failed (listed above the results file); 1: the bench itself crashed.
main()
  .then(async (failures) => {
    await cleanup();
    process.exit(failures.length > 0 ? 2 : 0);
  })
  .catch(async (err) => {
    console.error(`bench failed: ${(err as Error).stack ?? err}`);
    await cleanup();
    process.exit(1);
  });
