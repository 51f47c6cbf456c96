import request from 'supertest';
import { Client } from 'pg';
import { orderBody, startTestStack, TestStack } from '../support/test-app';
import { FLOWS, captureMethodFor, historyProblems, pspTruth, runFlow } from '../support/psp-flows';
import { waitFor } from '../support/wait';
import { createOrder, getOrder, settled } from '../support/order-api';
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

describe('Reconciler: stale payments in flight are checked with the PSP; payments waiting on the customer are not', () => {
  let stack: TestStack;

  beforeAll(async () => {
    // Every payment is stale at once; webhooks are delivered until the test turns them off.
    stack = await startTestStack({ env: { RECONCILE_STALE_AFTER_MS: '0' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const checkedAt = async (ids: string[]) =>
    (await stack.db.query(`SELECT id, checked_at FROM payments WHERE id = ANY($1) ORDER BY id`, [ids])).rows.map((r) => ({ id: r.id, at: r.checked_at.getTime() }));

  it('retrieves a processing and an authorized payment whose news never came and applies each with its own record; leaves payments waiting on the customer alone', async () => {
    const webhooks = `${stack.url}/webhooks/stripe`;
    // Waiting on the customer: a fresh order (requires_payment_method) and one stopped at 3-D Secure (requires_action).
    const waiting = await createOrder(stack);
    const action = await createOrder(stack);
    await stack.stripe.paymentIntents.confirm(action.payment.id, { payment_method: 'pm_card_authenticationRequired' });
    // In flight: an authorization (requires_capture), which changes without the customer.
    const held = await createOrder(stack, { captureMethod: 'manual' });
    await stack.stripe.paymentIntents.confirm(held.payment.id, { payment_method: 'pm_card_visa' });
    await settled(stack);
    expect((await getOrder(stack, action.id)).payment.status).toBe('requires_action');
    expect(await getOrder(stack, held.id)).toMatchObject({ status: 'authorized', payment: { status: 'requires_capture' } });

    // From here the PSP delivers nothing but the one event redelivered below.
    stack.mock.setForwardTo(undefined);
    // In flight: a bank debit, processing now and settled shortly after at the PSP. Settle hears only that it is processing.
    const debit = await createOrder(stack);
    const sepa = await stack.stripe.paymentMethods.create({ type: 'sepa_debit', sepa_debit: { iban: 'DE89370400440532013000' }, billing_details: { name: 'Ada', email: 'ada@example.com' } });
    expect((await stack.stripe.paymentIntents.confirm(debit.payment.id, { payment_method: sepa.id })).status).toBe('processing');
    await stack.mock.idle();
    expect((await stack.stripe.paymentIntents.retrieve(debit.payment.id)).status).toBe('succeeded');
    const processing = stack.mock.events().find((e) => e.type === 'payment_intent.processing' && (e.data.object as { id: string }).id === debit.payment.id);
    stack.mock.setForwardTo(webhooks);
    stack.mock.redeliver(processing!.id);
    await stack.mock.idle();
    stack.mock.setForwardTo(undefined);
    await waitFor(async () => (await getOrder(stack, debit.id)).status === 'processing', 'the debit processing', 10000);
    // The authorization is captured at the PSP (as from the Dashboard): nobody tells Settle either.
    await stack.stripe.paymentIntents.capture(held.payment.id);
    await settled(stack);

    // Their events are older than the cursor: the Events API will not bring them again, only the stale check can.
    await stack.db.query(
      `INSERT INTO reconciler_state (name, events_cursor_created) VALUES ('events', $1) ON CONFLICT (name) DO UPDATE SET events_cursor_created = EXCLUDED.events_cursor_created`,
      [Math.floor(Date.now() / 1000) + 60],
    );
    const untouched = [waiting.payment.id, action.payment.id];
    const before = await checkedAt(untouched);

    stack.mock.resetStats();
    const reconciler = stack.app.get(ReconcilerService);
    const pass = await reconciler.runOnce();
    expect(pass).toMatchObject({ result: 'ok', missedEvents: 0, stalePaymentsChecked: 2, paymentsFixed: 2, pspCalls: 3 });
    expect(retrieveCalls(stack.mock.stats())).toBe(2);
    for (const [order, from] of [[debit, 'processing'], [held, 'authorized']] as const) {
      const view = await getOrder(stack, order.id);
      expect({ id: order.id, status: view.status, last: view.history.at(-1) }).toEqual({
        id: order.id,
        status: 'paid',
        last: expect.objectContaining({ from, to: 'paid', eventId: expect.stringMatching(/^rec_/) }),
      });
      const record = (await stack.db.query(`SELECT source, status FROM webhook_events WHERE id = $1`, [view.history.at(-1)!.eventId])).rows[0];
      expect(record).toEqual({ source: 'reconciler', status: 'processed' });
    }
    // Neither payment waiting on the customer was asked about or touched, stale as they are.
    expect(await checkedAt(untouched)).toEqual(before);
    expect((await getOrder(stack, waiting.id)).status).toBe('pending_payment');
    expect((await getOrder(stack, action.id)).status).toBe('requires_action');

    // Nothing is in flight any more: a pass is the Events API call alone.
    stack.mock.resetStats();
    expect(await reconciler.runOnce()).toMatchObject({ result: 'ok', stalePaymentsChecked: 0, pspCalls: 1 });
    expect(retrieveCalls(stack.mock.stats())).toBe(0);
    expect(await checkedAt(untouched)).toEqual(before);
  }, 60000);
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
