/**
 * Soak run for the standalone mock PSP (not a test): starts `dist/mock-psp/standalone.js`
 * as its own process, drives it with orders through the official stripe SDK
 * (create with an Idempotency-Key, then confirm with pm_card_visa; every tenth
 * order is a manual-capture authorization left to lapse), receives its webhooks,
 * and prints the mock's RSS every minute.
 *
 *   npm run mock-psp:soak
 *   SOAK_MINUTES=10 SOAK_RATE=50 MOCK_PSP_TIME_SCALE=0.0001 npm run mock-psp:soak
 *
 * MOCK_PSP_TIME_SCALE defaults to 0.0001 here: keys expire after about 9 s,
 * events after about 4.3 min and authorizations lapse after 1 min, so the run
 * reaches its steady state (what the retention keeps) well within 30 minutes.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import path from 'node:path';
import Stripe from 'stripe';

const minutes = Number(process.env.SOAK_MINUTES ?? 30);
const ratePerSecond = Number(process.env.SOAK_RATE ?? 50);
const timeScale = process.env.MOCK_PSP_TIME_SCALE ?? '0.0001';
const forward = process.env.SOAK_FORWARD !== '0';

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return Math.round(kb / 102.4) / 10;
}

async function startReceiver(): Promise<{ url: string; received: () => number; close: () => void }> {
  let received = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received += 1;
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks`, received: () => received, close: () => server.close() };
}

function startMock(forwardTo: string | undefined): Promise<{ child: ChildProcess; port: number }> {
  const script = path.resolve(__dirname, '../../../dist/mock-psp/standalone.js');
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, MOCK_PSP_PORT: '0', MOCK_PSP_TIME_SCALE: timeScale, MOCK_PSP_FORWARD_TO: forwardTo ?? '' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /API on http:\/\/[^:]+:(\d+)/.exec(out);
      if (match) resolve({ child, port: Number(match[1]) });
    });
    child.once('exit', (code) => reject(new Error(`mock exited with ${code} before listening (did you run nest build?)`)));
  });
}

async function main(): Promise<void> {
  const receiver = forward ? await startReceiver() : undefined;
  const { child, port } = await startMock(receiver?.url);
  const stripe = new Stripe('sk_test_soak', { host: '127.0.0.1', port, protocol: 'http', telemetry: false, maxNetworkRetries: 0 });
  console.log(`soak: ${ratePerSecond} orders/s for ${minutes} min against the standalone mock (pid ${child.pid}, port ${port}), MOCK_PSP_TIME_SCALE=${timeScale}, webhooks ${forward ? 'forwarded' : 'off'}`);

  let started = 0;
  let done = 0;
  let failed = 0;
  let inFlight = 0;
  let lastError = '';
  const order = async (n: number): Promise<void> => {
    inFlight += 1;
    try {
      const manual = n % 10 === 0;
      const pi = await stripe.paymentIntents.create(
        { amount: 1000 + (n % 5000), currency: 'usd', capture_method: manual ? 'manual' : 'automatic', metadata: { order_id: `soak-${n}` } },
        { idempotencyKey: `soak-order-${n}` },
      );
      await stripe.paymentIntents.confirm(pi.id, { payment_method: 'pm_card_visa' });
      done += 1;
    } catch (err) {
      failed += 1;
      lastError = (err as Error).message;
    } finally {
      inFlight -= 1;
    }
  };

  const startedAt = Date.now();
  const endAt = startedAt + minutes * 60_000;
  // Launch on a 100 ms tick so the rate holds even if one tick is late; never more than 500 in flight.
  const tick = setInterval(() => {
    const due = Math.floor(((Date.now() - startedAt) / 1000) * ratePerSecond);
    while (started < due && inFlight < 500) void order(started++);
  }, 100);

  const series: Array<{ minute: number; rssMb: number }> = [{ minute: 0, rssMb: rssMb(child.pid as number) }];
  console.log(`minute 0: rss ${series[0].rssMb} MB`);
  await new Promise<void>((resolve) => {
    const report = setInterval(() => {
      const minute = Math.round((Date.now() - startedAt) / 60_000);
      const rss = rssMb(child.pid as number);
      series.push({ minute, rssMb: rss });
      console.log(
        `minute ${minute}: rss ${rss} MB, orders ${done} done / ${failed} failed / ${inFlight} in flight` +
          (receiver ? `, webhooks received ${receiver.received()}` : '') +
          (lastError ? `, last error: ${lastError}` : ''),
      );
      if (Date.now() >= endAt) {
        clearInterval(report);
        resolve();
      }
    }, 60_000);
  });
  clearInterval(tick);
  while (inFlight > 0) await new Promise((r) => setTimeout(r, 50));

  const secondHalf = series.filter((s) => s.minute >= minutes / 2).map((s) => s.rssMb);
  console.log(`RSS series (MB): ${series.map((s) => s.rssMb).join(', ')}`);
  console.log(`orders: ${done} done, ${failed} failed (${(done / ((Date.now() - startedAt) / 1000)).toFixed(1)}/s); second-half RSS ${Math.min(...secondHalf)}..${Math.max(...secondHalf)} MB`);
  child.kill('SIGTERM');
  receiver?.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
