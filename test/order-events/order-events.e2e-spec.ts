import request from 'supertest';
import { orderBody, startTestStack, TestStack } from '../support/test-app';
import { FLOWS, captureMethodFor, historyProblems, runFlow } from '../support/psp-flows';
import { waitFor } from '../support/wait';
import { ReconcilerService } from '../../src/reconciliation/reconciler.service';
import { ORDER_EVENTS_TEST_SECRET, OrderEventReceiver, sequenceProblems } from './receiver';

const inboxSettled = async (stack: TestStack) =>
  Number((await stack.db.query(`SELECT count(*) AS n FROM webhook_events WHERE status NOT IN ('processed', 'ignored')`)).rows[0].n) === 0;
const undelivered = async (stack: TestStack) =>
  Number((await stack.db.query(`SELECT count(*) AS n FROM order_event_deliveries WHERE status <> 'delivered'`)).rows[0].n);

function outboxEnv(receiver: OrderEventReceiver, extra: Record<string, string> = {}): Record<string, string> {
  return { ORDER_EVENTS_URL: receiver.url, ORDER_EVENTS_SECRET: ORDER_EVENTS_TEST_SECRET, ORDER_EVENTS_RETRY_BASE_MS: '50', ...extra };
}

describe('Order events out: a lossy, duplicating, reordering PSP still gives each order one event per change, in order', () => {
  let stack: TestStack;
  let receiver: OrderEventReceiver;

  beforeAll(async () => {
    receiver = await OrderEventReceiver.start();
    stack = await startTestStack({
      env: outboxEnv(receiver),
      mock: { faults: { dropRate: 0.2, duplicateRate: 0.3, reorderWindow: 4, delayMs: [0, 20] }, seed: 17 },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await receiver?.stop();
  });

  it('delivers every change once (by webhook-id), signed, in sequence order, with the order as GET /orders/:id shows it', async () => {
    const orders: Array<{ id: string; pi: string }> = [];
    for (let i = 0; i < 14; i++) {
      const flow = FLOWS[i % FLOWS.length]!;
      const order = (await request(stack.url).post('/orders').send(orderBody({ captureMethod: captureMethodFor(flow) })).expect(201)).body;
      if (flow === 'cancel') await request(stack.url).post(`/orders/${order.id}/cancel`).set(stack.admin).expect(200);
      else await runFlow(stack.stripe, stack.mock, order.payment.id, flow);
      orders.push({ id: order.id, pi: order.payment.id });
    }
    await stack.mock.idle(30000);
    await waitFor(() => inboxSettled(stack), 'delivered events applied', 20000);
    // Dropped deliveries are found by the reconciler; their changes go out like any other.
    await stack.app.get(ReconcilerService).runOnce();
    await waitFor(() => inboxSettled(stack), 'recovered events applied', 20000);
    await waitFor(async () => (await undelivered(stack)) === 0, 'every order event delivered', 20000);

    expect(receiver.badSignatures).toEqual([]);
    let paidOrders = 0;
    for (const o of orders) {
      const view = (await request(stack.url).get(`/orders/${o.id}`).expect(200)).body;
      expect(historyProblems(view.history)).toBeNull();
      const events = receiver.acceptedFor(o.id);
      expect({ order: o.id, problem: sequenceProblems(events, view.history) }).toEqual({ order: o.id, problem: null });
      const paid = events.filter((e) => e.type === 'order.paid');
      // A dispute won or a refund that failed returns the order to paid: one order.paid per time it became paid.
      expect(paid.length).toBe(view.history.filter((h: { to: string }) => h.to === 'paid').length);
      paidOrders += Math.min(paid.length, 1);
      // The last event carries the order exactly as the API shows it now; each one its own status and history so far.
      // Except the capture window's end: it comes on the charge, which may be applied after the authorization's
      // status change (from payment_intent.amount_capturable_updated), and events are written per status change.
      // Likewise what was captured, when a dispute or refund event proved the payment before the payment's own events came.
      // And the dispute's record: one first seen closed as won (its opening dropped or reordered after it) changes no
      // status, so no event carries it; one that changed the status is carried, by the same id, though its status may move on.
      if (events.length > 0) {
        const { captureBefore: sent, amountCaptured: sentCaptured, dispute: sentDispute, ...last } = events[events.length - 1]!.data;
        const { captureBefore: now, amountCaptured: nowCaptured, dispute: nowDispute, ...shown } = view;
        expect(last).toEqual(shown);
        if (sent !== undefined && sent !== null) expect(sent).toBe(now);
        if (sentCaptured !== undefined && sentCaptured !== null) expect(sentCaptured).toBe(nowCaptured);
        if (sentDispute) expect((sentDispute as { id: string }).id).toBe(nowDispute?.id);
        else if (nowDispute) {
          expect(nowDispute.status).toBe('won');
          expect(view.history.filter((h: { to: string }) => h.to === 'disputed' || h.to === 'dispute_lost')).toEqual([]);
        }
      }
      events.forEach((e, i) => {
        expect(e.data.status).toBe(view.history[i].to);
        expect(e.data.history).toEqual(view.history.slice(0, i + 1));
      });
    }
    expect(paidOrders).toBeGreaterThanOrEqual(8);
    // Several of the mock's deliveries were duplicates or reordered, yet no event went out for a change that was not made.
    const stored = Number((await stack.db.query(`SELECT count(*) AS n FROM order_events`)).rows[0].n);
    const history = Number((await stack.db.query(`SELECT count(*) AS n FROM order_status_history`)).rows[0].n);
    expect(stored).toBe(history);
    expect(receiver.accepted().length).toBe(stored);
    expect(receiver.orderOverlaps).toEqual([]);
  });

  it('lists events for operators by order and status', async () => {
    const order = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body;
    await runFlow(stack.stripe, stack.mock, order.payment.id, 'success');
    const listed = await waitFor(async () => {
      const body = (await request(stack.url).get(`/admin/order-events?orderId=${order.id}`).set(stack.admin).expect(200)).body;
      return body.data.length > 0 && body.data.every((e: { deliveries: Array<{ status: string }> }) => e.deliveries[0]?.status === 'delivered') ? body.data : null;
    }, 'the order events delivered', 20000);
    expect(listed[0]).toMatchObject({ orderId: order.id, type: 'order.paid', sequence: listed.length });
    expect(listed[0].id).toMatch(/^oev_/);
    expect(listed[0].deliveries).toEqual([
      expect.objectContaining({ endpoint: receiver.url, status: 'delivered', attempts: 1, lastAnswer: 200, lastError: null, nextAttemptAt: null }),
    ]);
    await request(stack.url).get('/admin/order-events?status=lost').set(stack.admin).expect(400);
    await request(stack.url).get('/admin/order-events?orderId=nope').set(stack.admin).expect(400);
    await request(stack.url).get('/admin/order-events').expect(401);
    await request(stack.url).post('/admin/order-events/oev_nope/redeliver').set(stack.admin).expect(404);
  });
});
