import { Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import Stripe from 'stripe';
import { ReconcilerService } from '../../src/reconciliation/reconciler.service';
import { signedHeader } from '../support/child-stack';
import { eventsFor, historyProblems, pspDispute, pspPayment, pspTruth, runFlow } from '../support/psp-flows';
import { orderBody, startTestStack, TestStack, OrderJson, HistoryJson } from '../support/test-app';
import { createOrder, getOrder, settled, strayPayment } from '../support/order-api';
import { waitFor } from '../support/wait';

/**
 * The rest of a payment's life through the whole product (real HTTP,
 * PostgreSQL, Redis, the Stripe SDK at the mock PSP): disputes answered with
 * evidence or accepted, refunds that fail after they succeeded, money the
 * order did not ask for, events in another API version, and a dispute outcome
 * the PSP never delivered, found by the reconciler.
 */

/** orderBody()'s total. */
const AMOUNT = 1299 * 2 + 850;
const EVIDENCE_ROUTE = 'POST /v1/disputes/:id';
const CLOSE_ROUTE = 'POST /v1/disputes/:id/close';
const UNEXPECTED = 'settle_unexpected_payments_total';
const VERSION_MISMATCH = 'settle_event_api_version_mismatch_total';

/** Waits for the order to reach `status` (and `extra`, when given); a timeout says where it was instead. */
async function until(stack: TestStack, id: string, status: string, extra: (o: OrderJson) => boolean = () => true, timeoutMs = 20000): Promise<OrderJson> {
  let last: OrderJson | undefined;
  try {
    return (await waitFor<OrderJson | null>(async () => {
      last = await getOrder(stack, id);
      return last.status === status && extra(last) ? last : null;
    }, `order ${id} ${status}`, timeoutMs)) as OrderJson;
  } catch (err) {
    throw new Error(`${(err as Error).message}; it is ${last?.status} (dispute ${JSON.stringify(last?.dispute)}, refunded ${last?.amountRefunded}) with history ${JSON.stringify(last && path(last))}`);
  }
}

async function confirm(stack: TestStack, order: OrderJson, method: string): Promise<void> {
  await stack.stripe.paymentIntents.confirm(order.payment.id, { payment_method: method });
}

/** Every series of a metric, by its label text ('' for none). */
async function series(stack: TestStack, name: string): Promise<Record<string, number>> {
  const text = (await request(stack.url).get('/metrics').set(stack.admin).expect(200)).text;
  const out: Record<string, number> = {};
  for (const match of text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`, 'gm'))) out[match[1] ?? ''] = Number(match[2]);
  return out;
}

const counter = async (stack: TestStack, name: string) => (await series(stack, name))[''] ?? 0;
const routeCalls = (stack: TestStack, route: string) => stack.mock.stats().byRoute[route] ?? 0;
const path = (order: OrderJson) => order.history.map((h) => h.to);
const entries = (order: OrderJson, from: string, to: string) => order.history.filter((h) => h.from === from && h.to === to);

function evidence(stack: TestStack, id: string, body: unknown): request.Test {
  return request(stack.url).post(`/orders/${id}/dispute/evidence`).set(stack.admin).send(body as object);
}

function accept(stack: TestStack, id: string): request.Test {
  return request(stack.url).post(`/orders/${id}/dispute/accept`).set(stack.admin).send({});
}

/** A paid order whose payment the customer's bank disputes (a dispute test card): disputed, with the PSP's dispute. */
async function disputedOrder(stack: TestStack, method = 'pm_card_createDispute'): Promise<{ order: OrderJson; dispute: Stripe.Dispute }> {
  const order = await createOrder(stack);
  await confirm(stack, order, method);
  const disputed = await until(stack, order.id, 'disputed');
  const dispute = await pspDispute(stack.stripe, stack.mock, order.payment.id);
  if (!dispute) throw new Error(`no dispute at the PSP for ${order.payment.id}`);
  return { order: disputed, dispute };
}

/** The dispute as GET /orders/:id shows it, from the PSP's object. */
function disputeView(dispute: Stripe.Dispute): OrderJson['dispute'] {
  return {
    id: dispute.id,
    status: dispute.status,
    reason: dispute.reason,
    amount: dispute.amount,
    evidenceDueBy: new Date((dispute.evidence_details?.due_by as number) * 1000).toISOString(),
  };
}

async function expectWherePspIs(stack: TestStack, order: OrderJson): Promise<void> {
  const truth = await pspTruth(stack.stripe, stack.mock, order.payment.id);
  expect({ status: order.status, amountRefunded: order.amountRefunded }).toEqual(truth);
  expect(historyProblems(order.history)).toBeNull();
}

/** Posts an event to the app signed as the PSP signs; answers the HTTP status. */
async function post(stack: TestStack, event: Record<string, unknown>): Promise<number> {
  const payload = JSON.stringify(event);
  const res = await request(stack.url)
    .post('/webhooks/stripe')
    .set('Content-Type', 'application/json')
    .set('Stripe-Signature', signedHeader(payload, { secret: stack.mock.webhookSecret }))
    .send(payload);
  return res.status;
}

describe("the rest of a payment's life (real HTTP, PostgreSQL, Redis, Stripe SDK -> mock PSP)", () => {
  let stack: TestStack;

  beforeAll(async () => {
    // The mock in real time: a dispute opens 1 s after the charge (time to refund part first), the bank
    // decides 2 s after the evidence, a pm_card_refundFail refund fails 3 s after it succeeded.
    stack = await startTestStack({ mock: { timeScale: 1 } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  describe('disputes', () => {
    it('shows the dispute on the order, refuses empty evidence, and a win with winning_evidence makes it paid again', async () => {
      const { order, dispute } = await disputedOrder(stack);
      expect(dispute).toMatchObject({ status: 'needs_response', reason: 'fraudulent', amount: AMOUNT });
      expect(order.dispute).toEqual(disputeView(dispute));
      // The PSP's deadline, about a week out.
      expect(new Date(order.dispute?.evidenceDueBy as string).getTime()).toBeGreaterThan(Date.now() + 6 * 86400_000);
      // Disputed money cannot be refunded.
      await request(stack.url).post(`/orders/${order.id}/refunds`).set(stack.admin).send({}).expect(409);

      const calls = routeCalls(stack, EVIDENCE_ROUTE);
      for (const body of [{}, { text: '' }, { text: 42 }, { text: null }]) {
        const res = await evidence(stack, order.id, body).expect(400);
        expect({ body, message: res.body.message }).toEqual({ body, message: expect.stringMatching(/text/) });
      }
      await request(stack.url).post(`/orders/${order.id}/dispute/evidence`).send({ text: 'winning_evidence' }).expect(401);
      await request(stack.url).post(`/orders/${order.id}/dispute/accept`).send({}).expect(401);
      expect(routeCalls(stack, EVIDENCE_ROUTE)).toBe(calls);
      expect(await getOrder(stack, order.id)).toMatchObject({ status: 'disputed', dispute: { status: 'needs_response' } });

      const text = 'Signed for on delivery, tracking 1Z999AA10123456784. winning_evidence';
      const submitted = await evidence(stack, order.id, { text }).expect(200);
      expect(submitted.body).toMatchObject({ id: order.id, dispute: { id: dispute.id, reason: 'fraudulent', amount: AMOUNT } });
      // The PSP's answer (under review) is applied at once; the bank's decision follows by webhook.
      expect(['under_review', 'won']).toContain(submitted.body.dispute.status);
      const atPsp = await stack.stripe.disputes.retrieve(dispute.id);
      expect(atPsp.evidence.uncategorized_text).toBe(text);
      expect(atPsp.evidence_details.submission_count).toBe(1);
      // Evidence is submitted once: under review or decided, the dispute takes no more.
      await evidence(stack, order.id, { text: 'more winning_evidence' }).expect(409);
      await accept(stack, order.id).expect(409);

      const won = await until(stack, order.id, 'paid', (o) => o.dispute?.status === 'won');
      await settled(stack);
      const after = await getOrder(stack, order.id);
      expect(after).toMatchObject({ status: 'paid', amountRefunded: 0, dispute: { id: dispute.id, status: 'won', reason: 'fraudulent', amount: AMOUNT } });
      expect(after.dispute).toEqual(won.dispute);
      expect(path(after)).toEqual(['paid', 'disputed', 'paid']);
      expect(entries(after, 'disputed', 'paid')).toHaveLength(1);
      await expectWherePspIs(stack, after);
      expect((await stack.stripe.disputes.retrieve(dispute.id)).status).toBe('won');
      expect(eventsFor(stack.mock, order.payment.id).filter((e) => e.type === 'charge.dispute.funds_reinstated')).toHaveLength(1);

      for (const res of [await evidence(stack, order.id, { text: 'winning_evidence' }).expect(409), await accept(stack, order.id).expect(409)]) {
        expect(res.body).toMatchObject({ statusCode: 409, error: 'Conflict', message: expect.stringContaining(dispute.id) });
      }
      expect(routeCalls(stack, EVIDENCE_ROUTE)).toBe(calls + 1);
      expect(routeCalls(stack, CLOSE_ROUTE)).toBe(0);
    });

    it('an order partially refunded before the dispute returns to partially_refunded when it is won', async () => {
      const order = await createOrder(stack);
      await confirm(stack, order, 'pm_card_createDispute');
      // Before the bank's dispute arrives (1 s after the charge).
      const refund = await stack.stripe.refunds.create({ payment_intent: order.payment.id, amount: 1000 });
      expect(refund.status).toBe('succeeded');
      const disputed = await until(stack, order.id, 'disputed');
      expect(disputed).toMatchObject({ amountRefunded: 1000, dispute: { status: 'needs_response', amount: AMOUNT - 1000 } });
      expect(path(disputed)).toEqual(['paid', 'partially_refunded', 'disputed']);

      await evidence(stack, order.id, { text: 'winning_evidence' }).expect(200);
      await until(stack, order.id, 'partially_refunded', (o) => o.dispute?.status === 'won');
      await settled(stack);
      const after = await getOrder(stack, order.id);
      expect(after).toMatchObject({ status: 'partially_refunded', amountRefunded: 1000, dispute: { status: 'won', amount: AMOUNT - 1000 } });
      expect(path(after)).toEqual(['paid', 'partially_refunded', 'disputed', 'partially_refunded']);
      await expectWherePspIs(stack, after);
    });

    it('evidence with losing_evidence loses it: dispute_lost, and nothing more can be done', async () => {
      const { order, dispute } = await disputedOrder(stack);
      const submitted = await evidence(stack, order.id, { text: 'We have nothing to show. losing_evidence' }).expect(200);
      expect(['under_review', 'lost']).toContain(submitted.body.dispute.status);
      await until(stack, order.id, 'dispute_lost');
      await settled(stack);
      const lost = await getOrder(stack, order.id);
      expect(lost).toMatchObject({ status: 'dispute_lost', amountRefunded: 0, dispute: { id: dispute.id, status: 'lost', amount: AMOUNT } });
      expect(path(lost)).toEqual(['paid', 'disputed', 'dispute_lost']);
      await expectWherePspIs(stack, lost);
      expect((await stack.stripe.disputes.retrieve(dispute.id)).status).toBe('lost');
      await evidence(stack, order.id, { text: 'winning_evidence' }).expect(409);
      await accept(stack, order.id).expect(409);
      await request(stack.url).post(`/orders/${order.id}/refunds`).set(stack.admin).send({}).expect(409);
    });

    it('accepting the dispute closes it as lost at the PSP, and the order is dispute_lost at once', async () => {
      const { order, dispute } = await disputedOrder(stack, 'pm_card_createDisputeProductNotReceived');
      expect(order.dispute).toEqual(disputeView(dispute));
      expect(order.dispute?.reason).toBe('product_not_received');
      const closes = routeCalls(stack, CLOSE_ROUTE);

      const accepted = await accept(stack, order.id).expect(200);
      // The PSP answered lost: nothing to wait for.
      expect(accepted.body).toMatchObject({ id: order.id, status: 'dispute_lost', dispute: { id: dispute.id, status: 'lost', reason: 'product_not_received' } });
      expect((await stack.stripe.disputes.retrieve(dispute.id)).status).toBe('lost');
      expect(routeCalls(stack, CLOSE_ROUTE)).toBe(closes + 1);

      await accept(stack, order.id).expect(409);
      await evidence(stack, order.id, { text: 'winning_evidence' }).expect(409);
      await settled(stack);
      // Its charge.dispute.closed webhook, applied after, adds nothing.
      const lost = await getOrder(stack, order.id);
      expect(lost).toMatchObject({ status: 'dispute_lost', dispute: { status: 'lost' } });
      expect(path(lost)).toEqual(['paid', 'disputed', 'dispute_lost']);
      await expectWherePspIs(stack, lost);
      expect(routeCalls(stack, CLOSE_ROUTE)).toBe(closes + 1);
    });

    it('answers 409 without a dispute (unpaid or paid), 404 for an unknown order, and asks the PSP nothing', async () => {
      const unpaid = await createOrder(stack);
      const paid = await createOrder(stack);
      await confirm(stack, paid, 'pm_card_visa');
      await until(stack, paid.id, 'paid');
      const before = [routeCalls(stack, EVIDENCE_ROUTE), routeCalls(stack, CLOSE_ROUTE)];
      for (const order of [unpaid, paid]) {
        for (const res of [await evidence(stack, order.id, { text: 'winning_evidence' }).expect(409), await accept(stack, order.id).expect(409)]) {
          expect(res.body).toMatchObject({ statusCode: 409, error: 'Conflict', message: expect.stringMatching(/no open dispute/) });
        }
        expect((await getOrder(stack, order.id)).dispute).toBeUndefined();
      }
      const unknown = '0b7c2a9e-5f1d-4c8e-9a7b-3d2e1f0a9b8c';
      await evidence(stack, unknown, { text: 'winning_evidence' }).expect(404);
      await accept(stack, unknown).expect(404);
      expect([routeCalls(stack, EVIDENCE_ROUTE), routeCalls(stack, CLOSE_ROUTE)]).toEqual(before);
    });
  });

  it('a refund that fails after it succeeded lowers amountRefunded again, and the status with it, one history entry each', async () => {
    const order = await createOrder(stack);
    await confirm(stack, order, 'pm_card_refundFail');
    await until(stack, order.id, 'paid');

    const first = (await request(stack.url).post(`/orders/${order.id}/refunds`).set(stack.admin).send({ amount: 1000 }).expect(201)).body.refund;
    expect(first).toMatchObject({ amount: 1000, status: 'succeeded' });
    await until(stack, order.id, 'partially_refunded', (o) => o.amountRefunded === 1000);
    const rest = (await request(stack.url).post(`/orders/${order.id}/refunds`).set(stack.admin).send({ amount: AMOUNT - 1000 }).expect(201)).body.refund;
    expect(rest).toMatchObject({ amount: AMOUNT - 1000, status: 'succeeded' });
    await until(stack, order.id, 'refunded', (o) => o.amountRefunded === AMOUNT);

    // The card network refuses both, 3 s after each: the money is the merchant's again.
    const back = await until(stack, order.id, 'paid', (o) => o.amountRefunded === 0);
    await settled(stack);
    const after = await getOrder(stack, order.id);
    expect(after).toEqual(back);
    expect(after).toMatchObject({ status: 'paid', amountRefunded: 0 });
    for (const refund of [first, rest]) expect(await stack.stripe.refunds.retrieve(refund.id)).toMatchObject({ status: 'failed', failure_reason: 'expired_or_canceled_card' });
    expect(path(after)).toEqual(['paid', 'partially_refunded', 'refunded', 'partially_refunded', 'paid']);
    // Each failure is one entry, caused by a failure event of one of the two refunds (whichever of its three events came first).
    for (const [from, to] of [['refunded', 'partially_refunded'], ['partially_refunded', 'paid']] as const) {
      const [entry, ...more] = entries(after, from, to);
      expect(more).toEqual([]);
      const cause = stack.mock.events().find((e) => e.id === entry?.eventId);
      expect({ from, to, type: cause?.type, object: cause?.data.object }).toEqual({
        from,
        to,
        type: expect.stringMatching(/^(refund\.updated|charge\.refund\.updated|refund\.failed)$/),
        object: expect.objectContaining({ id: expect.stringMatching(new RegExp(`^(${first.id}|${rest.id})$`)), status: 'failed' }),
      });
    }
    await expectWherePspIs(stack, after);
    expect((await pspPayment(stack.stripe, order.payment.id)).charge?.amount_refunded).toBe(0);

    // Failed refunds do not count against what is left: all of it can be refunded again (and with this card, fail again).
    const again = (await request(stack.url).post(`/orders/${order.id}/refunds`).set(stack.admin).send({}).expect(201)).body.refund;
    expect(again).toMatchObject({ amount: AMOUNT, status: 'succeeded' });
    await until(stack, order.id, 'refunded', (o) => o.amountRefunded === AMOUNT);
    await until(stack, order.id, 'paid', (o) => o.amountRefunded === 0);
    await settled(stack);
    const last = await getOrder(stack, order.id);
    expect(path(last)).toEqual(['paid', 'partially_refunded', 'refunded', 'partially_refunded', 'paid', 'refunded', 'paid']);
    await expectWherePspIs(stack, last);
  });

  it('a second PaymentIntent on a paid order and a dashboard charge on an unpaid one: needs_review, listed, counted and logged', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn');
    try {
      const counted = await counter(stack, UNEXPECTED);
      const paid = await createOrder(stack);
      await confirm(stack, paid, 'pm_card_visa');
      await until(stack, paid.id, 'paid');
      const unpaid = await createOrder(stack);

      // A double charge (the same amount once more) and a charge typed in a dashboard (any amount).
      const cases = [
        { order: paid, stray: await strayPayment(stack, paid, AMOUNT), before: ['paid'], ownStatus: 'succeeded' },
        { order: unpaid, stray: await strayPayment(stack, unpaid, 500), before: [] as string[], ownStatus: 'requires_payment_method' },
      ];
      for (const { order, stray, before, ownStatus } of cases) {
        expect(stray.status).toBe('succeeded');
        await until(stack, order.id, 'needs_review');
        await settled(stack);
        const review = await getOrder(stack, order.id);
        expect(review.reviewReason).toEqual(expect.stringMatching(/\S/));
        expect(review.unexpectedPayments).toEqual([{ id: stray.id, amount: stray.amount, currency: 'usd', status: 'succeeded' }]);
        // The order's own payment is untouched.
        expect(review.payment).toMatchObject({ id: order.payment.id, status: ownStatus });
        expect(review.amountRefunded).toBe(0);
        expect(path(review)).toEqual([...before, 'needs_review']);
        expect(historyProblems(review.history)).toBeNull();
      }
      const countedAfterReview = (await counter(stack, UNEXPECTED)) - counted;
      const lines = warn.mock.calls.map(([line]) => line as { msg?: string; orderId?: string; orderPaymentId?: string; unexpectedPaymentId?: string }).filter((l) => l.msg === 'unexpected payment on an order');
      for (const { order, stray } of cases) {
        const forOrder = lines.filter((l) => l.orderId === order.id);
        expect(forOrder.length).toBeGreaterThan(0);
        expect(forOrder.map((l) => ({ orderPaymentId: l.orderPaymentId, unexpectedPaymentId: l.unexpectedPaymentId }))).toEqual(forOrder.map(() => ({ orderPaymentId: order.payment.id, unexpectedPaymentId: stray.id })));
      }

      // Every event of both stray payments once more: nothing new is listed, counted or recorded.
      const views = await Promise.all(cases.map(({ order }) => getOrder(stack, order.id)));
      for (const { stray } of cases) for (const event of eventsFor(stack.mock, stray.id)) stack.mock.redeliver(event.id);
      await settled(stack);
      for (const [i, { order }] of cases.entries()) {
        const again = await getOrder(stack, order.id);
        expect({ unexpectedPayments: again.unexpectedPayments, history: again.history }).toEqual({ unexpectedPayments: views[i]?.unexpectedPayments, history: views[i]?.history });
      }
      // One count per payment taken, however many of its events said so, and none for the deliveries once more.
      expect({ afterReview: countedAfterReview, afterRedelivery: (await counter(stack, UNEXPECTED)) - counted }).toEqual({ afterReview: 2, afterRedelivery: 2 });
    } finally {
      warn.mockRestore();
    }
  });

  it("counts events rendered in another API version than the SDK's, by version, and says so once per version", async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn');
    try {
      const order = await createOrder(stack);
      await confirm(stack, order, 'pm_card_visa');
      await until(stack, order.id, 'paid');
      await settled(stack);
      const paid = await getOrder(stack, order.id);
      // The mock renders every event in the SDK's version, as a new account does: none of them counted so far.
      expect(await series(stack, VERSION_MISMATCH)).toEqual({});

      // An endpoint pinned to older versions: the order's own success again, and events of a type Settle ignores.
      const succeeded = eventsFor(stack.mock, order.payment.id).find((e) => e.type === 'payment_intent.succeeded') as Stripe.Event;
      const id = () => `evt_version_${randomBytes(6).toString('hex')}`;
      const customer = (apiVersion: string) => ({ id: id(), object: 'event', api_version: apiVersion, type: 'customer.created', created: Math.floor(Date.now() / 1000), livemode: false, pending_webhooks: 1, request: { id: null, idempotency_key: null }, data: { object: { id: 'cus_version', object: 'customer' } } });
      const events = [{ ...succeeded, id: id(), api_version: '2020-08-27' }, customer('2020-08-27'), customer('2022-11-15'), { ...succeeded, id: id(), api_version: Stripe.API_VERSION }];
      for (const event of events) expect(await post(stack, event as unknown as Record<string, unknown>)).toBe(200);
      await settled(stack);

      expect(await series(stack, VERSION_MISMATCH)).toEqual({ '{api_version="2020-08-27"}': 2, '{api_version="2022-11-15"}': 1 });
      const said = warn.mock.calls.map(([line]) => line as { msg?: string; eventApiVersion?: string; sdkApiVersion?: string }).filter((l) => typeof l.msg === 'string' && l.msg.includes('another API version'));
      expect(said.map((l) => l.eventApiVersion).sort()).toEqual(['2020-08-27', '2022-11-15']);
      expect(said.every((l) => l.sdkApiVersion === Stripe.API_VERSION)).toBe(true);
      // Counted and still applied as usual: the order's own success changes nothing.
      const after = await getOrder(stack, order.id);
      expect({ status: after.status, history: after.history }).toEqual({ status: 'paid', history: paid.history });

      // The same version again is counted, not said again.
      expect(await post(stack, customer('2022-11-15'))).toBe(200);
      await settled(stack);
      expect((await series(stack, VERSION_MISMATCH))['{api_version="2022-11-15"}']).toBe(2);
      expect(warn.mock.calls.filter(([line]) => String((line as { msg?: string }).msg).includes('another API version'))).toHaveLength(2);
    } finally {
      warn.mockRestore();
    }
  });
});

describe('a dispute outcome the PSP never delivered is found by the reconciler', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack({ mock: { timeScale: 0.01 } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it.each([
    ['losing_evidence', 'dispute_lost', 'lost', ['charge.dispute.updated', 'charge.dispute.closed']],
    ['winning_evidence', 'paid', 'won', ['charge.dispute.updated', 'charge.dispute.closed', 'charge.dispute.funds_reinstated']],
  ])('%s: charge.dispute.closed dropped, one reconciler pass makes the order %s', async (text, status, disputeStatus, droppedTypes) => {
    const { order, dispute } = await disputedOrder(stack);
    await settled(stack);

    // From here the PSP believes it delivers, and nothing arrives.
    stack.mock.setFaults({ dropRate: 1 });
    try {
      await evidence(stack, order.id, { text }).expect(200);
      await stack.mock.idle(30000);
    } finally {
      stack.mock.setFaults({});
    }
    const emitted = eventsFor(stack.mock, order.payment.id);
    const dropped = emitted.filter((e) => stack.mock.deliveryState(e.id)?.dropped);
    expect(dropped.map((e) => e.type)).toEqual(droppedTypes);
    const closed = dropped.find((e) => e.type === 'charge.dispute.closed') as Stripe.Event;
    expect(closed.data.object).toMatchObject({ id: dispute.id, status: disputeStatus });
    // Only the PSP's answer to the evidence is known: under review.
    expect(await getOrder(stack, order.id)).toMatchObject({ status: 'disputed', dispute: { id: dispute.id, status: 'under_review' } });

    const pass = await stack.app.get(ReconcilerService).runOnce();
    expect(pass).toMatchObject({ result: 'ok', missedEvents: dropped.length });
    await until(stack, order.id, status);
    await settled(stack);
    const after = await getOrder(stack, order.id);
    expect(after).toMatchObject({ status, dispute: { id: dispute.id, status: disputeStatus } });
    expect(path(after)).toEqual(['paid', 'disputed', status]);
    // The entry names an event the reconciler brought in from the Events API.
    const entry = after.history.at(-1) as HistoryJson;
    const cause = dropped.find((e) => e.id === entry.eventId);
    expect(cause?.data.object).toMatchObject({ id: dispute.id, status: disputeStatus });
    const row = (await stack.db.query(`SELECT source, status FROM webhook_events WHERE id = $1`, [entry.eventId])).rows[0];
    expect(row).toEqual({ source: 'reconciler', status: 'processed' });
    await expectWherePspIs(stack, after);
  });
});

describe('failed refunds whose events arrive out of order (delivered by the test, one at a time)', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack({ forwardWebhooks: false });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** Delivers one event and waits until it is applied, so the order of application is the order given. */
  async function applyInOrder(events: Stripe.Event[]): Promise<void> {
    for (const event of events) {
      expect(await post(stack, event as unknown as Record<string, unknown>)).toBe(200);
      await waitFor(async () => (await stack.db.query(`SELECT 1 FROM webhook_events WHERE id = $1 AND status IN ('processed', 'ignored')`, [event.id])).rowCount === 1, `${event.type} ${event.id} applied`);
    }
  }

  it("a first refund's failure arriving before a second refund's events: the PSP's end state, each transition once", async () => {
    const order = await createOrder(stack);
    // Two refunds made one after the other, both failed later (pm_card_refundFail).
    const emitted = await runFlow(stack.stripe, stack.mock, order.payment.id, 'refundFails');
    const [first, second] = [...new Set(emitted.filter((e) => e.type === 'refund.created').map((e) => (e.data.object as Stripe.Refund).id))];
    const failureOf = (refund: string | undefined) => (e: Stripe.Event) => (e.data.object as Stripe.Refund).id === refund && (e.data.object as Stripe.Refund).status === 'failed';
    const firstFailure = emitted.filter(failureOf(first));
    const secondFailure = emitted.filter(failureOf(second));
    const secondMade: Stripe.Event[] = [
      ...emitted.filter((e) => e.type === 'charge.refunded').slice(1),
      ...emitted.filter((e) => e.type === 'refund.created' && (e.data.object as Stripe.Refund).id === second),
    ];
    const before = emitted.filter((e) => ![...firstFailure, ...secondFailure, ...secondMade].includes(e));
    expect(firstFailure).toHaveLength(3);
    expect(secondFailure).toHaveLength(3);
    expect(secondMade.map((e) => e.type)).toEqual(['charge.refunded', 'refund.created']);
    // The PSP's order but for the first refund's failure, which overtakes the second refund's own events.
    await applyInOrder([...before, ...firstFailure, ...secondMade, ...secondFailure]);

    const after = await getOrder(stack, order.id);
    expect({ status: after.status, amountRefunded: after.amountRefunded }).toEqual(await pspTruth(stack.stripe, stack.mock, order.payment.id));
    expect({ path: path(after), problem: historyProblems(after.history) }).toEqual({ path: path(after), problem: null });
  });
});
