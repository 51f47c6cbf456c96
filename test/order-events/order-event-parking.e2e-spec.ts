import request from 'supertest';
import { OrderEventsRepository } from '../../src/order-events/order-events.repository';
import { DeliveryResult } from '../../src/order-events/order-event.types';
import { orderBody, startTestStack, TestStack } from '../support/test-app';

/**
 * Deliveries waiting behind an earlier undelivered event of their order leave
 * the due set the claim walks (parked), and come back as soon as the event
 * ahead is delivered. Driven through the repository on the app's real
 * PostgreSQL, for an endpoint the app itself does not post to (its sender only
 * claims for ORDER_EVENTS_URL), so nothing but this test touches these rows.
 */
describe('Order events: deliveries waiting behind an undelivered event are parked', () => {
  const ENDPOINT = 'http://parking.invalid/hook';
  let stack: TestStack;
  let events: OrderEventsRepository;
  let orderId: string;
  let nextSequence = 1;

  beforeAll(async () => {
    stack = await startTestStack({ forwardWebhooks: false });
    events = stack.app.get(OrderEventsRepository);
    orderId = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body.id;
  });
  afterAll(async () => stack?.stop());

  /** `count` events of the order, each with a pending delivery to ENDPOINT due since `dueForS` seconds. */
  async function addEvents(count: number, dueForS: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const id = `oev_parking_${nextSequence}`;
      await stack.db.query(`INSERT INTO order_events (id, order_id, sequence, type, data, created_at) VALUES ($1, $2, $3, 'order.paid', '{}', now())`, [id, orderId, nextSequence]);
      await stack.db.query(
        `INSERT INTO order_event_deliveries (event_id, endpoint, order_id, sequence, status, next_attempt_at, retry_from)
         VALUES ($1, $2, $3, $4, 'pending', now() - make_interval(secs => $5), now() - make_interval(secs => $5))`,
        [id, ENDPOINT, orderId, nextSequence, dueForS],
      );
      ids.push(id);
      nextSequence++;
    }
    return ids;
  }

  /** The ids of ENDPOINT's deliveries the claim walks: pending and due. */
  async function due(): Promise<string[]> {
    const { rows } = await stack.db.query(`SELECT event_id FROM order_event_deliveries WHERE endpoint = $1 AND status = 'pending' AND next_attempt_at <= now() ORDER BY sequence`, [ENDPOINT]);
    return rows.map((r) => r.event_id as string);
  }

  async function nextTry(id: string): Promise<number> {
    const { rows } = await stack.db.query(`SELECT extract(epoch FROM next_attempt_at - now()) AS s FROM order_event_deliveries WHERE event_id = $1 AND endpoint = $2`, [id, ENDPOINT]);
    return Number(rows[0].s);
  }

  async function claimIds(): Promise<Array<{ id: string; attempt: number }>> {
    return (await events.claimDue(10, 60_000, [ENDPOINT])).map((c) => ({ id: c.eventId, attempt: c.attempt }));
  }

  function answer(id: string, attempt: number, status: DeliveryResult['status'], nextInS = 0): DeliveryResult {
    return { eventId: id, endpoint: ENDPOINT, attempt, status, nextAttemptAt: new Date(Date.now() + nextInS * 1000), httpStatus: status === 'delivered' ? 200 : 500, error: status === 'delivered' ? null : 'HTTP 500' };
  }

  it('parks the later events behind one waiting for its retry, and brings each back when the one ahead is delivered', async () => {
    const [first, second, third] = await addEvents(3, 120);
    expect(await claimIds()).toEqual([{ id: first, attempt: 1 }]);
    await events.recordResults([answer(first!, 1, 'pending', 600)]);
    // Blocked, yet due: every claim walked past them.
    expect(await due()).toEqual([second, third]);
    expect(await claimIds()).toEqual([]);

    expect(await events.parkBlocked([ENDPOINT], 0)).toBe(2);
    expect(await due()).toEqual([]);
    for (const id of [second!, third!]) expect(await nextTry(id)).toBeCloseTo(await nextTry(first!), 0);
    expect(await events.parkBlocked([ENDPOINT], 0)).toBe(0);

    // The first one's retry comes due and goes through: the second is due at once, the third still waits.
    await stack.db.query(`UPDATE order_event_deliveries SET next_attempt_at = now() - interval '1 second' WHERE event_id = $1 AND endpoint = $2`, [first, ENDPOINT]);
    expect(await claimIds()).toEqual([{ id: first, attempt: 2 }]);
    await events.recordResults([answer(first!, 2, 'delivered')]);
    expect(await due()).toEqual([second]);
    expect(await claimIds()).toEqual([{ id: second, attempt: 1 }]);
    await events.recordResults([answer(second!, 1, 'delivered')]);
    expect(await claimIds()).toEqual([{ id: third, attempt: 1 }]);
    await events.recordResults([answer(third!, 1, 'delivered')]);
    expect(await due()).toEqual([]);
  });

  it('parks the events behind one that failed for an hour at a time, and brings the next back once it is redelivered and delivered', async () => {
    const [failed, behind] = await addEvents(2, 120);
    expect(await claimIds()).toEqual([{ id: failed, attempt: 1 }]);
    await events.recordResults([answer(failed!, 1, 'failed')]);
    expect(await due()).toEqual([behind]);

    expect(await events.parkBlocked([ENDPOINT], 0)).toBe(1);
    expect(await due()).toEqual([]);
    expect(await nextTry(behind!)).toBeGreaterThan(59 * 60);
    expect(await nextTry(behind!)).toBeLessThanOrEqual(60 * 60);

    // What the operator's redelivery does to the failed row (for the app's own endpoints).
    await stack.db.query(`UPDATE order_event_deliveries SET status = 'pending', next_attempt_at = now(), retry_from = now() WHERE event_id = $1 AND endpoint = $2`, [failed, ENDPOINT]);
    expect(await claimIds()).toEqual([{ id: failed, attempt: 2 }]);
    await events.recordResults([answer(failed!, 2, 'delivered')]);
    expect(await claimIds()).toEqual([{ id: behind, attempt: 1 }]);
    await events.recordResults([answer(behind!, 1, 'delivered')]);
  });

  it('leaves alone what a sender keeping up would send soon: behind one being sent now, or due only a moment ago', async () => {
    const [sending, behindSending] = await addEvents(2, 120);
    expect(await claimIds()).toEqual([{ id: sending, attempt: 1 }]);
    // Leased, not answered yet: the one behind it goes out as soon as the answer is recorded.
    expect(await events.parkBlocked([ENDPOINT], 0)).toBe(0);
    await events.recordResults([answer(sending!, 1, 'delivered')]);
    expect(await claimIds()).toEqual([{ id: behindSending, attempt: 1 }]);
    await events.recordResults([answer(behindSending!, 1, 'delivered')]);

    const [waiting, behindWaiting] = await addEvents(2, 5);
    expect(await claimIds()).toEqual([{ id: waiting, attempt: 1 }]);
    await events.recordResults([answer(waiting!, 1, 'pending', 600)]);
    // Due for 5 s only: the default threshold (30 s) leaves it to the claim.
    expect(await events.parkBlocked([ENDPOINT])).toBe(0);
    expect(await due()).toEqual([behindWaiting]);
    expect(await events.parkBlocked([ENDPOINT], 0)).toBe(1);
  });
});
