import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { Pool } from 'pg';
import { CpuMeter, CpuUse } from '../lib/cpu';
import { ClosedLoopResult, postEvents } from '../lib/load';
import { sleep, waitFor } from '../lib/stats';
import { EventSource } from '../lib/stripe-events';

export interface GateResult {
  /** Alternating runs of genuine signed events (closed loop from 127.0.0.1): alone, then beside the junk flood from 127.0.0.2. */
  rounds: Array<{ alone: ClosedLoopResult; flooded: ClosedLoopResult }>;
  /** Genuine acks a second over all runs of each kind. */
  aloneRate: number;
  floodedRate: number;
  /** floodedRate / aloneRate: the goal is >= 0.8. */
  ratio: number;
  /** Non-2xx answers to genuine events while flooded (must be 0: verified deliveries are never throttled). */
  floodedErrors: number;
  junk: { connections: number; sent: number; perSecond: number; byStatus: Record<string, number> };
  /** Settle's CPU per genuine ack when alone (receiving and applying it), and per junk request (the flooded runs' CPU beyond their genuine acks). */
  serverUsPerGenuine?: number;
  serverUsPerJunk?: number;
  cpu: { alone: CpuUse[]; flooded: CpuUse[] };
  /** Genuine events beyond the unpaid orders (each repeated an order already paid, and its applying changed nothing). */
  ordersRepeated: number;
}

/**
 * The attacker, in a thread of its own so it does not slow the genuine
 * sender's event loop: `connections` keep-alive connections from 127.0.0.2,
 * each posting the next junk delivery as soon as the last is answered. The
 * junk looks real (fresh t=, a v1 of the right length, a body of the same
 * size as an event), so a throttled sender's probe is verified once a second;
 * it is built once (the header once a second) so the attacker, which shares
 * the machine's cores with Settle here, spends as little CPU as it can.
 */
const JUNK_FLOOD = `
const http = require('node:http');
const { randomBytes } = require('node:crypto');
const { parentPort, workerData } = require('node:worker_threads');
const { url, connections, from, bodyBytes } = workerData;
const agent = new http.Agent({ keepAlive: true, maxSockets: connections, localAddress: from });
const byStatus = {};
let sent = 0;
let stopping = false;
parentPort.on('message', (m) => { if (m === 'count') parentPort.postMessage({ count: sent }); else stopping = true; });
// One body and one header a second: the attacker spends its CPU on sending, not on building junk.
const body = JSON.stringify({ id: 'evt_junk_' + randomBytes(8).toString('hex'), object: 'event', type: 'payment_intent.succeeded', created: Math.floor(Date.now() / 1000), data: { object: { pad: 'x'.repeat(bodyBytes) } } });
const headers = () => ({ 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'stripe-signature': 't=' + Math.floor(Date.now() / 1000) + ',v1=' + randomBytes(32).toString('hex') });
let current = headers();
const refresh = setInterval(() => { current = headers(); }, 1000);
function one() {
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent, headers: current }, (res) => {
      res.resume();
      res.on('end', () => { byStatus[res.statusCode] = (byStatus[res.statusCode] || 0) + 1; resolve(); });
    });
    req.on('error', () => { byStatus.error = (byStatus.error || 0) + 1; resolve(); });
    sent++;
    req.end(body);
  });
}
async function loop() { while (!stopping) await one(); }
Promise.all(Array.from({ length: connections }, loop)).then(() => { clearInterval(refresh); agent.destroy(); parentPort.postMessage({ sent, byStatus }); });
`;

/**
 * Issue 20's bench: the ack rate of genuine events while junk floods the
 * webhook route from another address, against the rate without the flood.
 * The app runs with its defaults (WEBHOOK_REFUSED_PER_MINUTE=60), so after 60
 * refusals the flood is answered 429 without an HMAC. Runs alternate (alone,
 * flooded, alone, flooded...) so a shared machine's drift hits both kinds
 * alike; the queue is drained between runs, so each starts with an idle worker.
 */
export async function runGatePhase(options: {
  settleUrl: string;
  /** The Settle process, whose CPU is measured. */
  pid: number;
  pool: Pool;
  secret: string;
  runTag: string;
  /** Unpaid orders, one per genuine event. */
  orders: { from: number; count: number };
  connections: number;
  junkConnections: number;
  /** Seconds of each run; `rounds` runs of each kind. */
  durationS: number;
  rounds: number;
  warmupS: number;
}): Promise<GateResult> {
  const { settleUrl, secret, runTag, orders, connections, durationS } = options;
  // Each run takes the next unpaid orders, one event each; past the last one it cycles over them all (paid by then).
  let taken = 0;
  const genuine = async (tag: string, seconds = durationS) => {
    const left = orders.count - taken;
    const source = left > 0 ? new EventSource(`${runTag}${tag}`, secret, orders.from + taken, left, 0) : new EventSource(`${runTag}${tag}`, secret, orders.from, orders.count, 0);
    const result = await postEvents(settleUrl, source, { connections, durationS: seconds });
    taken += source.taken;
    return result;
  };
  const drained = async () => {
    const quiet = await waitFor(async () => {
      const { rows } = await options.pool.query<{ n: string }>(`SELECT count(*) AS n FROM webhook_events WHERE status = 'received'`);
      return Number(rows[0]?.n ?? 0) === 0;
    }, 180_000, 250);
    if (!quiet) throw new Error('the webhook backlog did not drain within 180 s');
  };

  await genuine('gatew', options.warmupS);
  await drained();
  const rounds: GateResult['rounds'] = [];
  const cpu: GateResult['cpu'] = { alone: [], flooded: [] };
  const junk = { sent: 0, floodS: 0, during: 0, byStatus: {} as Record<string, number> };
  for (let round = 0; round < options.rounds; round++) {
    let meter = new CpuMeter(options.pid);
    const alone = await genuine(`gatea${round}`);
    cpu.alone.push(meter.read());
    await drained();

    const flood = startFlood(settleUrl, options.junkConnections);
    let flooded: ClosedLoopResult;
    try {
      // Long enough for the first 60 refusals to throttle the sender: the measured run sees the steady state.
      await sleep(500);
      const before = await flood.sentSoFar();
      meter = new CpuMeter(options.pid);
      flooded = await genuine(`gatef${round}`);
      cpu.flooded.push(meter.read());
      junk.during += (await flood.sentSoFar()) - before;
    } finally {
      const done = await flood.stop();
      junk.sent += done.sent;
      junk.floodS += done.seconds;
      for (const [status, n] of Object.entries(done.byStatus)) junk.byStatus[status] = (junk.byStatus[status] ?? 0) + n;
    }
    rounds.push({ alone, flooded });
    await drained();
  }

  const sum = (xs: Array<number | undefined>) => xs.reduce<number>((a, b) => a + (b ?? NaN), 0);
  const aloneOk = sum(rounds.map((r) => r.alone.ok));
  const floodedOk = sum(rounds.map((r) => r.flooded.ok));
  const aloneRate = aloneOk / sum(rounds.map((r) => r.alone.durationS));
  const floodedRate = floodedOk / sum(rounds.map((r) => r.flooded.durationS));
  const perGenuineS = sum(cpu.alone.map((c) => c.appCpuS)) / aloneOk;
  const junkCpuS = sum(cpu.flooded.map((c) => c.appCpuS)) - perGenuineS * floodedOk;
  return {
    rounds,
    aloneRate,
    floodedRate,
    ratio: aloneRate > 0 ? floodedRate / aloneRate : NaN,
    floodedErrors: sum(rounds.map((r) => r.flooded.errors)),
    junk: { connections: options.junkConnections, sent: junk.sent, perSecond: junk.sent / junk.floodS, byStatus: junk.byStatus },
    serverUsPerGenuine: Number.isFinite(perGenuineS) ? 1e6 * perGenuineS : undefined,
    // Only when the junk was numerous enough for its share to stand out of the genuine events' variation.
    serverUsPerJunk: Number.isFinite(junkCpuS) && junkCpuS > 0 && junk.during >= 1000 ? (1e6 * junkCpuS) / junk.during : undefined,
    cpu,
    ordersRepeated: Math.max(0, taken - orders.count),
  };
}

/** Starts the junk flood thread; stop() ends it and tells what it sent and what came back. */
function startFlood(settleUrl: string, connections: number) {
  const worker = new Worker(JUNK_FLOOD, {
    eval: true,
    workerData: { url: new URL('/webhooks/stripe', settleUrl).toString(), connections, from: '127.0.0.2', bodyBytes: 1200 },
  });
  const started = performance.now();
  const finished = new Promise<{ sent: number; byStatus: Record<string, number> }>((resolve, reject) => {
    const onMessage = (m: { sent?: number; byStatus?: Record<string, number> }) => {
      if (!m.byStatus) return;
      worker.off('message', onMessage);
      resolve(m as { sent: number; byStatus: Record<string, number> });
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
  });
  return {
    sentSoFar: () => junkSent(worker),
    stop: async () => {
      worker.postMessage('stop');
      const result = await finished;
      const seconds = (performance.now() - started) / 1000;
      await worker.terminate();
      return { ...result, seconds };
    },
  };
}

/** How many junk requests the flood thread has sent so far. */
function junkSent(flood: Worker): Promise<number> {
  return new Promise((resolve) => {
    const onMessage = (m: { count?: number }) => {
      if (m.count === undefined) return;
      flood.off('message', onMessage);
      resolve(m.count);
    };
    flood.on('message', onMessage);
    flood.postMessage('count');
  });
}
