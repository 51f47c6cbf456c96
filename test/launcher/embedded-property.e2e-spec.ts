import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Stripe from 'stripe';
import { MockPsp } from '../../src/mock-psp';
import { ChildApp } from '../support/child-app';
import { signedHeader } from '../support/child-stack';
import { FLOWS, FlowName, captureMethodFor, chargeFigures, historyProblems, pspPayment, pspTruth, runFlow } from '../support/psp-flows';
import { TEST_ADMIN_KEY, TEST_WEBHOOK_SECRET, testAppEnv } from '../support/services';
import { shuffle } from '../support/shuffle';
import { orderBody } from '../support/test-app';
import { waitFor } from '../support/wait';

/**
 * The full-stack property of test/webhooks/webhook-ordering.e2e-spec.ts (real
 * PSP events in any order, with duplicates, end where the PSP is) on the
 * embedded database: the app is `npm start`'s launcher with no DATABASE_URL
 * (PGlite under a temporary .data/), pointed at this test's mock PSP. Fewer
 * runs per flow than on PostgreSQL: the property is the same, the launcher
 * boot and PGlite are slower; 13 flows x 6 runs, about the 10 x 8 orders there were
 * before the dispute-outcome and failed-refund flows.
 */
const RUNS_PER_FLOW = 6;

describe('any order and duplication of real PSP events ends where the PSP is (embedded PGlite via the launcher)', () => {
  let cwd: string;
  let app: ChildApp;
  let mock: MockPsp;
  let stripe: Stripe;

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'settle-embedded-property-'));
    mock = await MockPsp.start({ port: 0, webhookSecret: TEST_WEBHOOK_SECRET, timeScale: 0.01 });
    const env = testAppEnv('', mock.url);
    delete env.DATABASE_URL;
    delete env.DATABASE_POOL_SIZE;
    app = await ChildApp.start(env, { script: 'launcher.js', cwd, timeoutMs: 90000 });
    expect(app.output).toMatch(/PostgreSQL: embedded PGlite/);
    stripe = new Stripe('sk_test_settle', { host: '127.0.0.1', port: new URL(mock.url).port, protocol: 'http', telemetry: false });
  }, 120000);
  afterAll(async () => {
    await app?.stop('SIGTERM');
    await mock?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  async function deliver(event: Stripe.Event): Promise<number> {
    const payload = JSON.stringify(event);
    const res = await fetch(`${app.url}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Stripe-Signature': signedHeader(payload, { secret: mock.webhookSecret }) },
      body: payload,
    });
    return res.status;
  }

  /** Every stored event applied (or ignored): none left received. */
  async function allSettled(): Promise<boolean> {
    const res = await fetch(`${app.url}/admin/webhook-events?status=received&limit=1`, { headers: { Authorization: `Bearer ${TEST_ADMIN_KEY}` } });
    return ((await res.json()) as { data: unknown[] }).data.length === 0;
  }

  it.each(FLOWS.map((f) => [f]))('%s', async (flow) => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.array(fc.nat(), { maxLength: 5 }), fc.boolean(), async (seed, duplicatePicks, burst) => {
        const created = await fetch(`${app.url}/orders`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(orderBody({ captureMethod: captureMethodFor(flow as FlowName) })) });
        expect(created.status).toBe(201);
        const order = (await created.json()) as { id: string; payment: { id: string } };
        const events = await runFlow(stripe, mock, order.payment.id, flow as FlowName);
        const deliveries = [...events, ...duplicatePicks.map((i) => events[i % events.length] as Stripe.Event)];
        shuffle(deliveries, seed);
        const statuses: number[] = [];
        if (burst) statuses.push(...(await Promise.all(deliveries.map(deliver))));
        else for (const e of deliveries) statuses.push(await deliver(e));
        expect(statuses.every((s) => s === 200)).toBe(true);
        await waitFor(allSettled, `events of ${order.id} applied`, 20000, 25);
        const truth = await pspTruth(stripe, mock, order.payment.id);
        const view = (await (await fetch(`${app.url}/orders/${order.id}`)).json()) as {
          status: string;
          amountRefunded: number;
          amountCaptured?: number | null;
          history: Array<{ from: string; to: string }>;
        };
        expect({ status: view.status, amountRefunded: view.amountRefunded }).toEqual(truth);
        expect(historyProblems(view.history)).toBeNull();
        expect(view.history.length).toBeGreaterThan(0);
        if (captureMethodFor(flow as FlowName) === 'manual') {
          expect(view.amountCaptured ?? 0).toBe(chargeFigures((await pspPayment(stripe, order.payment.id)).charge).amountCaptured);
        }
      }),
      { numRuns: RUNS_PER_FLOW },
    );
  }, 120000);
});
