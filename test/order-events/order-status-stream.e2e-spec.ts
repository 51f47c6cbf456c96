import request from 'supertest';
import { orderBody, startTestStack, TestStack } from '../support/test-app';
import { waitFor } from '../support/wait';
import { OrderEventsListener } from '../../src/order-events/order-events.listener';
import { SseStream } from './sse-client';

describe('GET /orders/:id/events: heartbeats and clients that go away', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack({ env: { ORDER_EVENTS_HEARTBEAT_MS: '100' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('keeps an idle stream alive with heartbeats and forgets a client once it disconnects', async () => {
    const listener = stack.app.get(OrderEventsListener);
    const before = listener.subscriberCount;
    const order = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body;
    const { status, stream } = await SseStream.open(`${stack.url}/orders/${order.id}/events`);
    expect(status).toBe(200);
    await waitFor(async () => stream.comments >= 2, 'two heartbeats', 10000);
    expect(stream.messages.map((m) => m.data)).toEqual([{ status: 'pending_payment', history: null }]);
    expect(listener.subscriberCount).toBe(before + 1);

    stream.close();
    await waitFor(async () => listener.subscriberCount === before, 'the stream unsubscribed', 10000);
  });

  it('sends the change to every client watching the order, then ends each at the terminal status', async () => {
    const order = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body;
    const streams = await Promise.all([1, 2, 3].map(async () => (await SseStream.open(`${stack.url}/orders/${order.id}/events`)).stream));
    await waitFor(async () => streams.every((s) => s.messages.length === 1), 'the current status on every stream', 10000);
    await request(stack.url).post(`/orders/${order.id}/cancel`).set(stack.admin).expect(200);
    await waitFor(async () => streams.every((s) => s.ended), 'every stream ended', 10000);
    for (const s of streams) {
      expect(s.messages.map((m) => [m.id, m.data])).toEqual([
        ['0', { status: 'pending_payment', history: null }],
        ['1', { status: 'canceled', history: expect.objectContaining({ from: 'pending_payment', to: 'canceled', reason: 'canceled by admin' }) }],
      ]);
    }
  });
});

describe('GET /orders/:id/events without notifications (as under the embedded PGlite, where they never arrive)', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack();
    // No LISTEN connection at all; the default 15 s heartbeat is longer than the waits below.
    await stack.app.get(OrderEventsListener).onModuleDestroy();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('still sends each change: open streams look for new events in the outbox', async () => {
    const order = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body;
    const { stream } = await SseStream.open(`${stack.url}/orders/${order.id}/events`);
    await waitFor(async () => stream.messages.length === 1, 'the current status', 5000);
    await request(stack.url).post(`/orders/${order.id}/cancel`).set(stack.admin).expect(200);
    await waitFor(async () => stream.ended, 'canceled on the stream, which then ends', 5000);
    expect(stream.messages.map((m) => [m.id, (m.data as { status: string }).status])).toEqual([
      ['0', 'pending_payment'],
      ['1', 'canceled'],
    ]);
  });
});
