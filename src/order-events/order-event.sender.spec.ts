import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { ApplyBacklog, BEHIND_BATCH, BEHIND_FOR_MS } from '../common/apply-backlog';
import { AppConfig } from '../config/app-config';
import { Metrics } from '../metrics/metrics';
import { OrderEventSender } from './order-event.sender';
import { ClaimedDelivery, DeliveryResult } from './order-event.types';
import { OrderEventsListener } from './order-events.listener';
import { OrderEventsRepository } from './order-events.repository';
import { BUSY_CLAIM_INTERVAL_MS, MAX_IN_FLIGHT, MAX_IN_FLIGHT_BUSY } from './send-capacity';

/**
 * The sender against a real HTTP endpoint, with its repository replaced: the
 * order of its claims, records and sweeps is what is checked here (the
 * repository's statements have their own tests on PostgreSQL).
 */
describe('OrderEventSender', () => {
  let server: Server;
  let url: string;
  const held: ServerResponse[] = [];
  let answerAll = false;

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      req.on('end', () => (answerAll ? res.end('ok') : held.push(res)));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const waitFor = async (check: () => boolean, ms = 5000) => {
    const until = Date.now() + ms;
    while (!check() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 5));
    return check();
  };

  it('claims other orders as soon as half its sends are answered, while their answers are still being recorded', async () => {
    const due: ClaimedDelivery[] = Array.from({ length: 500 }, (_, i) => ({
      eventId: `oev_test_${i}`,
      endpoint: url,
      attempt: 1,
      retryFrom: new Date(),
      createdAt: new Date(),
      body: JSON.stringify({ id: `oev_test_${i}`, type: 'order.paid', createdAt: new Date().toISOString(), sequence: 1, data: {} }),
    }));
    // What the sender asked of the repository, in order; recording never finishes during the test.
    const calls: Array<{ call: 'claim' | 'record' | 'park'; limit?: number }> = [];
    let releaseRecords!: () => void;
    const recordsReleased = new Promise<void>((resolve) => (releaseRecords = resolve));
    const repository = {
      claimDue: async (limit: number) => {
        calls.push({ call: 'claim', limit });
        return due.splice(0, limit);
      },
      recordResults: async (_results: DeliveryResult[]) => {
        calls.push({ call: 'record' });
        await recordsReleased;
      },
      parkBlocked: async () => {
        calls.push({ call: 'park' });
        return 0;
      },
    } as unknown as OrderEventsRepository;
    const listener = { subscribe: () => () => undefined } as unknown as OrderEventsListener;
    const config = {
      orderEvents: { endpoints: [url], secret: `whsec_${Buffer.from('order-event-sender-test').toString('base64')}`, retryBaseMs: 1000, giveUpAfterMs: 60_000, timeoutMs: 10_000, streamHeartbeatMs: 15_000 },
    } as unknown as AppConfig;
    const sender = new OrderEventSender(repository, listener, config, new Metrics(), new ApplyBacklog());
    try {
      sender.onApplicationBootstrap();
      expect(await waitFor(() => held.length === MAX_IN_FLIGHT)).toBe(true);
      // (A slow machine may have swept meanwhile: a sweep parks, then its claim finds no room.)
      expect(calls.filter((c) => c.call !== 'park')).toEqual([{ call: 'claim', limit: MAX_IN_FLIGHT }]);
      // Just after a sweep: the next is a second away, so a claim before it is the sender's own doing.
      const parks = () => calls.filter((c) => c.call === 'park').length;
      const parksBefore = parks();
      expect(await waitFor(() => parks() > parksBefore)).toBe(true);
      // The sweep's own wake (WAKE_COALESCE_MS after it) finds no room either.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const seen = calls.length;
      const answered = MAX_IN_FLIGHT / 2;
      for (const res of held.splice(0, answered)) res.end('ok');
      expect(await waitFor(() => calls.slice(seen).some((c) => c.call !== 'record'))).toBe(true);
      const next = calls.slice(seen).find((c) => c.call !== 'record');
      expect(next).toEqual({ call: 'claim', limit: answered });
      // The claim's sends reach the endpoint: it holds a full room again.
      expect(await waitFor(() => held.length === MAX_IN_FLIGHT)).toBe(true);
    } finally {
      due.length = 0;
      answerAll = true;
      releaseRecords();
      for (const res of held.splice(0)) res.end('ok');
      await sender.onModuleDestroy();
    }
  });
  it('while the applier is behind, keeps a few sends in flight and claims at most every BUSY_CLAIM_INTERVAL_MS, then goes back to full speed', async () => {
    let n = 0;
    const claims: Array<{ at: number; limit: number }> = [];
    const repository = {
      claimDue: async (limit: number) => {
        claims.push({ at: Date.now(), limit });
        return Array.from({ length: limit }, () => {
          const id = `oev_busy_${n++}`;
          return { eventId: id, endpoint: url, attempt: 1, retryFrom: new Date(), createdAt: new Date(), body: JSON.stringify({ id, type: 'order.paid', sequence: 1, data: {} }) };
        });
      },
      recordResults: async () => undefined,
      parkBlocked: async () => 0,
    } as unknown as OrderEventsRepository;
    const listener = { subscribe: () => () => undefined } as unknown as OrderEventsListener;
    const config = {
      orderEvents: { endpoints: [url], secret: `whsec_${Buffer.from('order-event-sender-test').toString('base64')}`, retryBaseMs: 1000, giveUpAfterMs: 60_000, timeoutMs: 10_000, streamHeartbeatMs: 15_000 },
    } as unknown as AppConfig;
    const backlog = new ApplyBacklog();
    // The processor cutting a large batch at every turn of the loop: a flood being applied. (Noted on each
    // check rather than by a timer, so a slow machine's stalled timers cannot end the flood early.)
    let flooding = true;
    const behind = backlog.behind.bind(backlog);
    backlog.behind = (now?: number) => {
      if (flooding) backlog.noteBatch(BEHIND_BATCH);
      return behind(now);
    };
    answerAll = true;
    const sender = new OrderEventSender(repository, listener, config, new Metrics(), backlog);
    try {
      sender.onApplicationBootstrap();
      await new Promise((resolve) => setTimeout(resolve, 1200));
      const busy = claims.splice(0);
      // Every due delivery is answered at once, so only the pacing holds the claims back.
      expect(busy.length).toBeGreaterThanOrEqual(2);
      expect(busy.length).toBeLessThanOrEqual(Math.ceil(1200 / BUSY_CLAIM_INTERVAL_MS) + 1);
      for (const claim of busy) expect(claim.limit).toBeLessThanOrEqual(MAX_IN_FLIGHT_BUSY);
      for (let i = 1; i < busy.length; i++) expect(busy[i]!.at - busy[i - 1]!.at).toBeGreaterThanOrEqual(BUSY_CLAIM_INTERVAL_MS - 1);
      flooding = false;
      await new Promise((resolve) => setTimeout(resolve, BEHIND_FOR_MS));
      expect(await waitFor(() => claims.some((c) => c.limit > MAX_IN_FLIGHT_BUSY))).toBe(true);
    } finally {
      await sender.onModuleDestroy();
      answerAll = false;
    }
  });
});
