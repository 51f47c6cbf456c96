import request from 'supertest';
import { ReconcilerService } from '../../src/reconciliation/reconciler.service';
import { FlowName, PARTIAL_CAPTURE, captureMethodFor, chargeFigures, eventsFor, historyProblems, pspPayment, pspTruth, runFlow } from '../support/psp-flows';
import { orderBody, startTestStack, TestStack, OrderJson } from '../support/test-app';
import { createOrder, getOrder, settled } from '../support/order-api';
import { waitFor } from '../support/wait';

/**
 * Manual capture, void, authorization expiry and unpaid-order expiry with the
 * mock PSP dropping, duplicating, delaying and reordering its deliveries:
 * right after the reconciler has run, every order is where the PSP is, each
 * transition in its history once.
 */

const UNPAID = ['pending_payment', 'requires_action', 'payment_failed', 'processing'];
const FAULTS = { dropRate: 0.25, duplicateRate: 0.25, reorderWindow: 4, delayMs: [0, 40] as [number, number] };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function confirm(stack: TestStack, pi: string, method: string): Promise<'succeeded' | 'declined' | 'refused'> {
  try {
    await stack.stripe.paymentIntents.confirm(pi, { payment_method: method });
    return 'succeeded';
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    if (status === 402) return 'declined';
    // The PaymentIntent was canceled (the order expired) before the customer confirmed it.
    if (status === 400) return 'refused';
    throw err;
  }
}

/** Runs the reconciler (it finds what the PSP's dropped deliveries did not say) and waits for what it found to be applied. */
async function reconcile(stack: TestStack): Promise<void> {
  await stack.mock.idle(30000);
  const pass = await stack.app.get(ReconcilerService).runOnce();
  expect(pass.result).toBe('ok');
  await settled(stack, 30000);
}

/** The order reaches `status`, with reconciler passes to find deliveries the PSP dropped. */
async function reached(stack: TestStack, id: string, status: string, timeoutMs = 10000): Promise<OrderJson> {
  let last: OrderJson | undefined;
  try {
    return await waitFor<OrderJson | null>(async () => {
      last = await getOrder(stack, id);
      if (last.status === status) return last;
      await stack.app.get(ReconcilerService).runOnce();
      return null;
    }, `order ${id} ${status}`, timeoutMs, 200) as OrderJson;
  } catch (err) {
    throw new Error(`${(err as Error).message}; it is ${last?.status}`);
  }
}

/**
 * Runs the checks of one order; returns what failed (null when all held), with
 * the order's history and what the PSP emitted for it, delivered or not, so
 * that one run reports every order that is wrong, not only the first.
 */
async function problemOf(stack: TestStack, o: { id: string; pi: string; flow: string }, checks: () => void): Promise<string | null> {
  try {
    checks();
    return null;
  } catch (err) {
    const final = await getOrder(stack, o.id);
    const history = final.history.map((h) => `${h.from}->${h.to} (${h.reason})`);
    const events = eventsFor(stack.mock, o.pi).map((e) => `${e.type}${stack.mock.deliveryState(e.id)?.dropped ? ' [dropped]' : ''}`);
    return `${o.flow} order ${o.id}: ${(err as Error).message}\nhistory: ${JSON.stringify(history)}\nPSP events (oldest first): ${JSON.stringify(events)}`;
  }
}

const dropped = (stack: TestStack, pis: string[]) => pis.flatMap((pi) => eventsFor(stack.mock, pi)).filter((e) => stack.mock.deliveryState(e.id)?.dropped).length;

/** Where the order is against where the PSP is, in one comparable object. */
async function comparison(stack: TestStack, o: { id: string; pi: string; flow: string }) {
  const final = await getOrder(stack, o.id);
  const truth = await pspTruth(stack.stripe, stack.mock, o.pi);
  const { charge } = await pspPayment(stack.stripe, o.pi);
  // What was captured is shown for manual capture (an automatic order's capture is its payment).
  const captured = final.captureMethod === 'manual' ? { amountCaptured: chargeFigures(charge).amountCaptured } : {};
  return {
    actual: {
      flow: o.flow,
      status: final.status,
      amountRefunded: final.amountRefunded,
      ...(final.captureMethod === 'manual' ? { amountCaptured: final.amountCaptured ?? 0 } : {}),
      historyProblem: historyProblems(final.history),
    },
    expected: { flow: o.flow, ...truth, ...captured, historyProblem: null },
    final,
  };
}

describe('manual capture under drops, duplicates, delays and reordering', () => {
  let stack: TestStack;

  beforeAll(async () => {
    // 7 days x 0.00002 = 12 s capture windows; the mock keeps objects 52 s, so the run stays well within that.
    stack = await startTestStack({ mock: { timeScale: 0.00002, faults: FAULTS, seed: 20251 } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  type ApiFlow = 'apiCapture' | 'apiPartialCaptureThenRefund' | 'apiVoid' | 'apiDoubleCapture';
  const PSP_FLOWS: FlowName[] = ['manualCapture', 'partialCapture', 'voidAuthorization', 'authorizationExpiry', 'success'];
  const API_FLOWS: ApiFlow[] = ['apiCapture', 'apiPartialCaptureThenRefund', 'apiVoid', 'apiDoubleCapture'];
  const EXPECTED: Record<FlowName | ApiFlow, string> = {
    success: 'paid',
    failureThenSuccess: 'paid',
    threeDs: 'paid',
    threeDsFailure: 'payment_failed',
    partialThenFullRefund: 'refunded',
    dispute: 'disputed',
    disputeWon: 'paid',
    disputeLost: 'dispute_lost',
    refundFails: 'paid',
    cancel: 'canceled',
    manualCapture: 'paid',
    partialCapture: 'refunded',
    voidAuthorization: 'canceled',
    authorizationExpiry: 'expired',
    apiCapture: 'paid',
    apiPartialCaptureThenRefund: 'partially_refunded',
    apiVoid: 'canceled',
    apiDoubleCapture: 'paid',
  };

  /** What an operator does through Settle's API once the authorization shows (found by the reconciler when its delivery was dropped). */
  async function runApiFlow(id: string, pi: string, flow: ApiFlow): Promise<void> {
    await confirm(stack, pi, 'pm_card_visa');
    await reached(stack, id, 'authorized');
    const admin = (path: string) => request(stack.url).post(`/orders/${id}${path}`).set(stack.admin);
    switch (flow) {
      case 'apiCapture':
        await admin('/capture').send({}).expect(200);
        break;
      case 'apiPartialCaptureThenRefund':
        await admin('/capture').send({ amount: PARTIAL_CAPTURE.capture }).expect(200);
        await reached(stack, id, 'paid');
        await admin('/refunds').send({ amount: PARTIAL_CAPTURE.firstRefund }).expect(201);
        break;
      case 'apiVoid':
        await admin('/cancel').expect(200);
        break;
      case 'apiDoubleCapture': {
        const statuses = (await Promise.all([1, 2, 3].map(() => admin('/capture').send({})))).map((r) => r.status);
        expect(statuses.every((s) => s === 200 || s === 409)).toBe(true);
        expect(statuses).toContain(200);
        break;
      }
    }
  }

  it('every order ends where the PSP is once the reconciler has run', async () => {
    const orders: Array<{ id: string; pi: string; flow: FlowName | ApiFlow }> = [];
    for (const flow of [...PSP_FLOWS, ...PSP_FLOWS, ...API_FLOWS]) {
      const captureMethod = (API_FLOWS as string[]).includes(flow) ? 'manual' : captureMethodFor(flow as FlowName);
      const order = await createOrder(stack, { captureMethod });
      orders.push({ id: order.id, pi: order.payment.id, flow });
    }
    // All at once: the authorization-expiry flows wait out the 12 s window meanwhile.
    await Promise.all(
      orders.map((o) => ((API_FLOWS as string[]).includes(o.flow) ? runApiFlow(o.id, o.pi, o.flow as ApiFlow) : runFlow(stack.stripe, stack.mock, o.pi, o.flow as FlowName))),
    );
    await reconcile(stack);

    const problems: string[] = [];
    for (const o of orders) {
      const { actual, expected, final } = await comparison(stack, o);
      const problem = await problemOf(stack, o, () => {
        expect(actual).toEqual(expected);
        expect({ flow: o.flow, status: final.status }).toEqual({ flow: o.flow, status: EXPECTED[o.flow] });
        expect(final.history.filter((h) => h.to === final.status)).toHaveLength(1);
      });
      if (problem) problems.push(problem);
    }
    expect(problems).toEqual([]);
    const doubled = orders.find((o) => o.flow === 'apiDoubleCapture')!;
    expect(eventsFor(stack.mock, doubled.pi).filter((e) => e.type === 'charge.captured')).toHaveLength(1);
    // The faults were real: some deliveries never came, and the reconciler made up for them.
    expect(dropped(stack, orders.map((o) => o.pi))).toBeGreaterThan(0);
  }, 90000);
});

describe('unpaid-order expiry under drops, duplicates, delays and reordering', () => {
  const TIMEOUT_MS = 3000;
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack({
      env: { ORDER_PAYMENT_TIMEOUT_MINUTES: '0.05', RECONCILE_INTERVAL_MS: '500' },
      mock: { faults: FAULTS, seed: 4242 },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('never expires an order whose money was taken, and every order ends where the PSP is', async () => {
    type Kind = 'abandoned' | 'declinedThenAbandoned' | 'paidEarly' | 'race' | 'strayAfterExpiry' | 'authorized';
    const plan: Kind[] = [
      'abandoned', 'abandoned', 'declinedThenAbandoned', 'declinedThenAbandoned', 'paidEarly', 'paidEarly',
      'race', 'race', 'race', 'race', 'race', 'race', 'strayAfterExpiry', 'strayAfterExpiry', 'authorized', 'authorized',
    ];
    const races = plan.filter((k) => k === 'race').length;
    let raceIndex = 0;
    const runs = await Promise.all(
      plan.map(async (kind) => {
        const order = await createOrder(stack, kind === 'authorized' ? { captureMethod: 'manual' } : {});
        const deadline = new Date(order.createdAt).getTime() + TIMEOUT_MS;
        let confirmed: string | null = null;
        let stray: string | null = null;
        switch (kind) {
          case 'declinedThenAbandoned':
            await confirm(stack, order.payment.id, 'pm_card_chargeDeclined');
            break;
          case 'paidEarly':
          case 'authorized':
            confirmed = await confirm(stack, order.payment.id, 'pm_card_visa');
            break;
          case 'race': {
            // From 1.5 s before the deadline to 2.5 s after it.
            const offset = -1500 + Math.round((raceIndex++ * 4000) / (races - 1));
            await sleep(Math.max(0, deadline + offset - Date.now()));
            confirmed = await confirm(stack, order.payment.id, 'pm_card_visa');
            break;
          }
          case 'strayAfterExpiry': {
            await reached(stack, order.id, 'expired', 20000);
            const intent = await stack.stripe.paymentIntents.create({
              amount: order.amount,
              currency: 'usd',
              metadata: { order_id: order.id },
              payment_method: 'pm_card_visa',
              confirm: true,
              automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
            });
            stray = intent.id;
            break;
          }
        }
        return { id: order.id, pi: order.payment.id, flow: kind, confirmed, stray };
      }),
    );
    // Every unpaid order is dealt with (paid or expired) by the sweeps and the webhooks; then one more pass.
    for (const r of runs) {
      await waitFor(async () => !UNPAID.includes((await getOrder(stack, r.id)).status), `order ${r.id} (${r.flow}) no longer unpaid`, 20000, 100);
    }
    await reconcile(stack);

    const problems: string[] = [];
    for (const r of runs) {
      const { actual, expected, final } = await comparison(stack, r);
      const intent = await stack.stripe.paymentIntents.retrieve(r.pi);
      const problem = await problemOf(stack, r, () => {
        // Never expired with money taken on the order's own PaymentIntent.
        if (final.status === 'expired') expect({ flow: r.flow, intent: intent.status }).toEqual({ flow: r.flow, intent: 'canceled' });
        if (r.confirmed === 'succeeded' && r.flow !== 'authorized') expect({ flow: r.flow, status: final.status }).toEqual({ flow: r.flow, status: 'paid' });
        if (r.flow === 'strayAfterExpiry') {
          expect({ flow: r.flow, status: final.status, intent: intent.status }).toEqual({ flow: r.flow, status: 'needs_review', intent: 'canceled' });
          expect(final.unexpectedPayments).toEqual([{ id: r.stray, amount: final.amount, currency: 'usd', status: 'succeeded' }]);
          expect(actual.historyProblem).toBeNull();
          expect(final.history.map((h) => h.to)).toEqual(['expired', 'needs_review']);
          return;
        }
        expect(actual).toEqual(expected);
        if (r.flow === 'abandoned' || r.flow === 'declinedThenAbandoned') expect(intent.cancellation_reason).toBe('abandoned');
      });
      if (problem) problems.push(problem);
    }
    expect(problems).toEqual([]);
    const outcomes = runs.filter((r) => r.flow === 'race').map((r) => r.confirmed);
    expect(outcomes).toContain('succeeded');
    expect(outcomes).toContain('refused');
    expect(dropped(stack, runs.map((r) => r.pi))).toBeGreaterThan(0);
  }, 90000);
});
