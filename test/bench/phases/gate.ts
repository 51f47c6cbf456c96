import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { Pool } from 'pg';
import { ClosedLoopResult, postEvents } from '../lib/load';
import { sleep, waitFor } from '../lib/stats';
import { EventSource } from '../lib/stripe-events';

export interface GateResult {
  /** Genuine signed events, closed loop from 127.0.0.1, nothing else running. */
  alone: ClosedLoopResult;
  /** The same, while a junk flood comes from 127.0.0.2. */
  flooded: ClosedLoopResult;
  /** flooded.rate / alone.rate: the goal is >= 0.8. */
  ratio: number;
  junk: { connections: number; sent: number; perSecond: number; byStatus: Record<string, number> };
}

/**
 * The attacker, in a thread of its own so it does not slow the genuine
 * sender's event loop: `connections` keep-alive connections from 127.0.0.2,
 * each posting the next junk delivery as soon as the last is answered. The
 * junk looks real (fresh t=, a v1 of the right length, a body of the same
 * size as an event), so a throttled sender's probe is verified once a second.
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
parentPort.on('message', () => { stopping = true; });
const pad = 'x'.repeat(bodyBytes);
function one() {
  return new Promise((resolve) => {
    const body = JSON.stringify({ id: 'evt_junk_' + randomBytes(8).toString('hex'), object: 'event', type: 'payment_intent.succeeded', created: Math.floor(Date.now() / 1000), data: { object: { pad } } });
    const signature = 't=' + Math.floor(Date.now() / 1000) + ',v1=' + randomBytes(32).toString('hex');
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'stripe-signature': signature } }, (res) => {
      res.resume();
      res.on('end', () => { byStatus[res.statusCode] = (byStatus[res.statusCode] || 0) + 1; resolve(); });
    });
    req.on('error', () => { byStatus.error = (byStatus.error || 0) + 1; resolve(); });
    sent++;
    req.end(body);
  });
}
async function loop() { while (!stopping) await one(); }
Promise.all(Array.from({ length: connections }, loop)).then(() => { agent.destroy(); parentPort.postMessage({ sent, byStatus }); });
`;

/**
 * Issue 20's bench: the ack rate of genuine events while junk floods the
 * webhook route from another address, against the rate without the flood.
 * The app runs with its defaults (WEBHOOK_REFUSED_PER_MINUTE=60), so after 60
 * refusals the flood is answered 429 without an HMAC. Between runs the
 * queue is drained, so each run starts with an idle worker.
 */
export async function runGatePhase(options: {
  settleUrl: string;
  pool: Pool;
  secret: string;
  runTag: string;
  orders: { from: number; count: number };
  connections: number;
  junkConnections: number;
  durationS: number;
  warmupS: number;
}): Promise<GateResult> {
  const { settleUrl, secret, runTag, orders, connections, durationS } = options;
  const genuine = async (tag: string) =>
    postEvents(settleUrl, new EventSource(`${runTag}${tag}`, secret, orders.from, orders.count, 0), { connections, durationS });
  const drained = async () => {
    const quiet = await waitFor(async () => {
      const { rows } = await options.pool.query<{ n: string }>(`SELECT count(*) AS n FROM webhook_events WHERE status IN ('received', 'queued')`);
      return Number(rows[0]?.n ?? 0) === 0;
    }, 180_000, 250);
    if (!quiet) throw new Error('the webhook backlog did not drain within 180 s');
  };

  await postEvents(settleUrl, new EventSource(`${runTag}gatew`, secret, orders.from, orders.count, 0), { connections, durationS: options.warmupS });
  await drained();
  const alone = await genuine('gatea');
  await drained();

  const flood = new Worker(JUNK_FLOOD, {
    eval: true,
    workerData: { url: new URL('/webhooks/stripe', settleUrl).toString(), connections: options.junkConnections, from: '127.0.0.2', bodyBytes: 1200 },
  });
  const floodDone = new Promise<{ sent: number; byStatus: Record<string, number> }>((resolve, reject) => {
    flood.once('message', resolve);
    flood.once('error', reject);
  });
  const floodStarted = performance.now();
  let flooded: ClosedLoopResult;
  try {
    // Long enough for the first 60 refusals to throttle the sender: the measured run sees the steady state.
    await sleep(500);
    flooded = await genuine('gatef');
  } finally {
    flood.postMessage('stop');
  }
  const junk = await floodDone;
  const floodS = (performance.now() - floodStarted) / 1000;
  await flood.terminate();
  await drained();
  return {
    alone,
    flooded,
    ratio: alone.rate > 0 ? flooded.rate / alone.rate : NaN,
    junk: { connections: options.junkConnections, sent: junk.sent, perSecond: junk.sent / floodS, byStatus: junk.byStatus },
  };
}
