import request from 'supertest';
import { Client } from 'pg';
import { orderBody, startTestStack, TestStack } from '../support/test-app';
import { FLOWS, captureMethodFor, historyProblems, pspTruth, runFlow } from '../support/psp-flows';
import { waitFor } from '../support/wait';
import { ReconcilerService } from '../../src/reconciliation/reconciler.service';

async function connect(url: string): Promise<Client> {
  const db = new Client({ connectionString: url });
  await db.connect();
  return db;
}

const inboxSettled = async (db: Client) =>
  Number((await db.query(`SELECT count(*) AS n FROM webhook_events WHERE status NOT IN ('processed', 'ignored')`)).rows[0].n) === 0;

const retrieveCalls = (stats: { byRoute: Record<string, number> }) =>
  Object.entries(stats.byRoute).filter(([route]) => /^GET \/v1\/payment_intents\/.+/.test(route)).reduce((s, [, n]) => s + n, 0);

describe('Reconciler: a lossy, duplicating, reordering PSP still leaves every order right', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack({ mock: { faults: { dropRate: 0.2, duplicateRate: 0.2, reorderWindow: 4, delayMs: [0, 20] }, seed: 42 } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('converges after one pass, then a pass with nothing new costs one PSP call', async () => {
    const orders: Array<{ id: string; pi: string }> = [];
    for (let i = 0; i < 21; i++) {
      const flow = FLOWS[i % FLOWS.length]!;
      const order = (await request(stack.url).post('/orders').send(orderBody({ captureMethod: captureMethodFor(flow) })).expect(201)).body;
      await runFlow(stack.stripe, stack.mock, order.payment.id, flow);
      orders.push({ id: order.id, pi: order.payment.id });
    }
    await stack.mock.idle(30000);
    await waitFor(() => inboxSettled(stack.db), 'delivered events applied', 20000);

    const reconciler = stack.app.get(ReconcilerService);
    const pass = await reconciler.runOnce();
    expect(pass).toMatchObject({ result: 'ok' });
    // With a fifth of the deliveries dropped, the Events API had something to add.
    expect(pass.missedEvents).toBeGreaterThan(0);
    await waitFor(() => inboxSettled(stack.db), 'recovered events applied', 20000);

    for (const o of orders) {
      const truth = await pspTruth(stack.stripe, stack.mock, o.pi);
      const view = (await request(stack.url).get(`/orders/${o.id}`).expect(200)).body;
      expect({ id: o.id, status: view.status, amountRefunded: view.amountRefunded }).toEqual({ id: o.id, ...truth });
      expect(historyProblems(view.history)).toBeNull();
    }
    const recovered = (await stack.db.query(`SELECT count(*) AS n FROM webhook_events WHERE source = 'reconciler'`)).rows[0].n;
    expect(Number(recovered)).toBe(pass.missedEvents);

    stack.mock.resetStats();
    // The listing starts at the cursor's second (gte: events of that second may still come), so it reads that
    // second's events again: one call, or one per 100 of them when many flows ended in the same second.
    const cursor = Number((await stack.db.query(`SELECT events_cursor_created FROM reconciler_state`)).rows[0].events_cursor_created);
    const pages = Math.max(1, Math.ceil(stack.mock.events().filter((e) => e.created >= cursor).length / 100));
    const idle = await reconciler.runOnce();
    expect(idle).toMatchObject({ result: 'ok', missedEvents: 0, stalePaymentsChecked: 0, pspCalls: pages });
    expect(pages).toBeLessThanOrEqual(2);
    expect(stack.mock.stats().byRoute['GET /v1/events']).toBe(pages);
    expect(retrieveCalls(stack.mock.stats())).toBe(0);
    const state = (await stack.db.query(`SELECT events_cursor_created, last_error, last_run_at FROM reconciler_state`)).rows[0];
    expect(Number(state.events_cursor_created)).toBeGreaterThan(0);
    expect(state.last_error).toBeNull();
    expect(state.last_run_at).not.toBeNull();
  }, 120000);

  it('runs once across instances: a pass while another holds the lock is skipped', async () => {
    const holder = await connect(stack.databaseUrl);
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock(7355609)');
      expect((await stack.app.get(ReconcilerService).runOnce()).result).toBe('skipped');
      await holder.query('ROLLBACK');
      expect((await stack.app.get(ReconcilerService).runOnce()).result).toBe('ok');
    } finally {
      await holder.end();
    }
    const metrics = await request(stack.url).get('/metrics').set(stack.admin).expect(200);
    expect(metrics.text).toMatch(/settle_reconciler_passes_total\{result="skipped"\} [1-9]/);
  });
});

describe('Reconciler: stale payments are checked with the PSP, a bounded number per pass', () => {
  let stack: TestStack;

  beforeAll(async () => {
    // Nothing is delivered and every payment is stale at once.
    stack = await startTestStack({ forwardWebhooks: false, env: { RECONCILE_STALE_AFTER_MS: '0' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('retrieves open payments, applies what the PSP says, and records the change with its own inbox row', async () => {
    const paid = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body;
    const open = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body;
    await stack.stripe.paymentIntents.confirm(paid.payment.id, { payment_method: 'pm_card_visa' });
    // Events older than the cursor: the Events API will not bring them again, only the stale check can.
    await stack.db.query(`INSERT INTO reconciler_state (name, events_cursor_created) VALUES ('events', $1)`, [Math.floor(Date.now() / 1000) + 60]);
    const before = await stack.db.query(`SELECT id, checked_at FROM payments WHERE id = $1`, [open.payment.id]);

    stack.mock.resetStats();
    const pass = await stack.app.get(ReconcilerService).runOnce();
    expect(pass).toMatchObject({ result: 'ok', stalePaymentsChecked: 2, paymentsFixed: 1, missedEvents: 0 });
    expect(retrieveCalls(stack.mock.stats())).toBe(2);
    const view = (await request(stack.url).get(`/orders/${paid.id}`).expect(200)).body;
    expect(view.status).toBe('paid');
    expect(view.history).toEqual([expect.objectContaining({ from: 'pending_payment', to: 'paid', eventId: expect.stringMatching(/^rec_/) })]);
    const record = (await stack.db.query(`SELECT source, status FROM webhook_events WHERE id = $1`, [view.history[0].eventId])).rows[0];
    expect(record).toEqual({ source: 'reconciler', status: 'processed' });
    const after = await stack.db.query(`SELECT checked_at FROM payments WHERE id = $1`, [open.payment.id]);
    expect(after.rows[0].checked_at.getTime()).toBeGreaterThan(before.rows[0].checked_at.getTime());
    // The paid payment is no longer open, so the next pass leaves it alone.
    stack.mock.resetStats();
    expect((await stack.app.get(ReconcilerService).runOnce()).stalePaymentsChecked).toBe(1);
  });
});

describe('Reconciler: failures are recorded, not swallowed', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack({ env: { STRIPE_API_URL: 'http://127.0.0.1:9' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('keeps the error in reconciler_state, counts it and answers failed', async () => {
    const pass = await stack.app.get(ReconcilerService).runOnce();
    expect(pass.result).toBe('failed');
    expect(pass.error).toMatch(/payment provider is unavailable/);
    const state = (await stack.db.query(`SELECT last_error FROM reconciler_state WHERE name = 'events'`)).rows[0];
    expect(state.last_error).toMatch(/unavailable/);
    const metrics = await request(stack.url).get('/metrics').set(stack.admin).expect(200);
    expect(metrics.text).toMatch(/settle_reconciler_passes_total\{result="failed"\} [1-9]/);
  }, 30000);
});

describe('Reconciler: a listing cut short by its page limit', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack({ forwardWebhooks: false });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('keeps the cursor below what it did not list, continues where it stopped, and moves the cursor once the listing is complete', async () => {
    // Three paid orders in three different seconds: Stripe lists newest first, so a short pass sees only the last ones.
    for (let i = 0; i < 3; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 1100));
      const order = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body;
      await stack.stripe.paymentIntents.confirm(order.payment.id, { payment_method: 'pm_card_visa' });
    }
    const emitted = stack.mock.events();
    expect(new Set(emitted.map((e) => e.created)).size).toBeGreaterThanOrEqual(3);
    const reconciler = stack.app.get(ReconcilerService);
    reconciler.setListingLimits({ pageSize: 2, maxPages: 2 });
    const inboxIds = async () => new Set((await stack.db.query(`SELECT id FROM webhook_events`)).rows.map((r) => r.id as string));
    const cursor = async () => Number((await stack.db.query(`SELECT events_cursor_created FROM reconciler_state WHERE name = 'events'`)).rows[0].events_cursor_created);

    const first = await reconciler.runOnce();
    expect(first).toMatchObject({ result: 'ok', eventsListed: 4, missedEvents: 4 });
    let seen = await inboxIds();
    const unlisted = emitted.filter((e) => !seen.has(e.id));
    expect(unlisted.length).toBeGreaterThan(0);
    expect(await cursor()).toBeLessThanOrEqual(Math.min(...unlisted.map((e) => e.created)));

    for (let pass = 0; pass < 10 && seen.size < emitted.length; pass++) {
      expect((await reconciler.runOnce()).result).toBe('ok');
      seen = await inboxIds();
    }
    expect(emitted.filter((e) => !seen.has(e.id))).toEqual([]);
    // One more pass reaches the end of the listing and only then moves the cursor to the newest event.
    await reconciler.runOnce();
    expect(await cursor()).toBe(Math.max(...emitted.map((e) => e.created)));
  }, 60000);
});
