import request from 'supertest';
import { OrderEventsRepository, RECORD_RESULTS } from '../../src/order-events/order-events.repository';
import { DeliveryResult } from '../../src/order-events/order-event.types';
import { orderBody, startTestStack, TestStack } from '../support/test-app';

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}

/** Index entries and rows of order_event_deliveries the plan read, over all its loops. */
function deliveryRowsRead(node: PlanNode): number {
  const own = node['Relation Name'] === 'order_event_deliveries' ? (node['Actual Rows'] + (node['Rows Removed by Filter'] ?? 0)) * node['Actual Loops'] : 0;
  return own + (node.Plans ?? []).reduce((sum, child) => sum + deliveryRowsRead(child), 0);
}

/**
 * A shop's deliveries table is mostly delivered rows, so the statistics an
 * ANALYZE leaves say almost nothing is pending; then a burst comes. The
 * sender's statements must still find each delivery and each line by its own
 * index entries rather than walk every pending or open delivery: the claim
 * planned that way took 0.8 s for 64 with 12,000 pending (found by the bench's
 * delivery phase, whose second flood with delivery went out at a quarter of the
 * first one's rate with PostgreSQL saturated), and the record hashed every
 * pending delivery. Counted in rows read, not timed.
 */
describe('Order events: the sender finds its rows by index whatever the statistics say', () => {
  const LINES = 300;
  const BATCH = 64;
  /** Events already delivered to every endpoint: a table where reading it all costs far more than BATCH lookups (30,000 rows). */
  const HISTORY = 100;
  const endpoints = Array.from({ length: LINES }, (_, i) => `http://plans.invalid/${i}`);
  let stack: TestStack;
  let events: OrderEventsRepository;
  let orderId: string;

  beforeAll(async () => {
    stack = await startTestStack({ forwardWebhooks: false });
    events = stack.app.get(OrderEventsRepository);
    orderId = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body.id;
  });
  afterAll(async () => stack?.stop());

  /** Event `sequence` of the order, with a delivery in `status` to every endpoint, next tried `inS` seconds from now. */
  async function addEvent(sequence: number, status: 'delivered' | 'pending', inS = -1): Promise<string> {
    const id = `oev_plans_${sequence}`;
    await stack.db.query(`INSERT INTO order_events (id, order_id, sequence, type, data, created_at) VALUES ($1, $2, $3, 'order.paid', '{}', now())`, [id, orderId, sequence]);
    await stack.db.query(
      `INSERT INTO order_event_deliveries (event_id, endpoint, order_id, sequence, status, next_attempt_at, retry_from)
       SELECT $1, e, $2, $3, $4, now() + make_interval(secs => $6), now() FROM unnest($5::text[]) AS e`,
      [id, orderId, sequence, status, endpoints, inS],
    );
    return id;
  }

  /** An SQL array literal of `values` as `type`. */
  function arrayOf(values: Array<string | number | Date | null>, type: string): string {
    const items = values.map((v) => (v === null ? 'NULL' : typeof v === 'number' ? String(v) : stack.db.escapeLiteral(v instanceof Date ? v.toISOString() : v)));
    return `ARRAY[${items.join(', ')}]::${type}[]`;
  }

  /**
   * Rows of order_event_deliveries `statement` reads under EXPLAIN ANALYZE,
   * planned generic (as a prepared statement or a SQL function plans it once
   * the values are unknown), with `settings` (a function's own), in a
   * transaction rolled back after: it changes nothing.
   */
  async function rowsRead(statement: string, types: string[], args: string[], settings: string[] = []): Promise<{ rows: number; read: number }> {
    await stack.db.query('BEGIN');
    try {
      for (const setting of settings) {
        const [name, value] = setting.split('=');
        await stack.db.query(`SET LOCAL ${name} = ${value}`);
      }
      await stack.db.query('SET LOCAL plan_cache_mode = force_generic_plan');
      await stack.db.query(`PREPARE plan_under_test(${types.join(', ')}) AS ${statement}`);
      const explained = await stack.db.query(`EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE plan_under_test(${args.join(', ')})`);
      const plan = (explained.rows[0]['QUERY PLAN'] as Array<{ Plan: PlanNode }>)[0]!.Plan;
      return { rows: plan['Actual Rows'], read: deliveryRowsRead(plan) };
    } finally {
      await stack.db.query('ROLLBACK');
      await stack.db.query('DEALLOCATE ALL');
    }
  }

  /** Events 1..HISTORY of the order, each delivered to every endpoint. */
  async function addHistory(): Promise<void> {
    await stack.db.query(
      `INSERT INTO order_events (id, order_id, sequence, type, data, created_at)
       SELECT 'oev_plans_' || s, $1, s, 'order.paid', '{}', now() FROM generate_series(1, $2) AS s`,
      [orderId, HISTORY],
    );
    await stack.db.query(
      `INSERT INTO order_event_deliveries (event_id, endpoint, order_id, sequence, status, next_attempt_at, retry_from, delivered_at)
       SELECT 'oev_plans_' || s, e, $1, s, 'delivered', now(), now(), now() FROM generate_series(1, $2) AS s, unnest($3::text[]) AS e`,
      [orderId, HISTORY, endpoints],
    );
  }

  let second: string;

  it('claims: a few rows read per delivery claimed after an ANALYZE that saw none pending', async () => {
    await addHistory();
    await stack.db.query('ANALYZE order_event_deliveries');
    second = await addEvent(HISTORY + 1, 'pending');

    const { rows } = await stack.db.query(`SELECT prosrc, proconfig FROM pg_proc WHERE proname = 'order_event_claim_due'`);
    const fn = rows[0] as { prosrc: string; proconfig: string[] | null };
    const claim = await rowsRead(fn.prosrc, ['integer', 'integer', 'text[]'], [String(BATCH), '60000', arrayOf(endpoints, 'text')], fn.proconfig ?? []);
    expect(claim.rows).toBe(BATCH);
    // Each claimed delivery: its entry in the due index, its line's first open entry, its row to update.
    // Walking every open delivery per candidate read LINES × BATCH (19,200) and more here.
    expect(claim.read).toBeLessThan(BATCH * 10);

    // And the claim itself hands out the head of 64 different lines, once each.
    const leased = await events.claimDue(BATCH, 60_000, endpoints);
    expect(leased).toHaveLength(BATCH);
    expect(new Set(leased.map((d) => d.eventId))).toEqual(new Set([second]));
    expect(new Set(leased.map((d) => d.endpoint)).size).toBe(BATCH);
    expect(await events.claimDue(LINES, 60_000, endpoints)).toHaveLength(LINES - BATCH);
  });

  it("records: each answer's row found by its key, and each line's next brought back by a lookup of its own", async () => {
    // Behind the second event of every line, a third one parked for an hour (as the sweep parks them).
    const third = await addEvent(HISTORY + 2, 'pending', 3600);
    const answered: DeliveryResult[] = endpoints.slice(0, BATCH).map((endpoint) => ({
      eventId: second, endpoint, attempt: 1, status: 'delivered', nextAttemptAt: new Date(), httpStatus: 200, error: null,
    }));
    const args = [
      arrayOf(answered.map((r) => r.eventId), 'text'), arrayOf(answered.map((r) => r.endpoint), 'text'), arrayOf(answered.map((r) => r.attempt), 'int'),
      arrayOf(answered.map((r) => r.status), 'text'), arrayOf(answered.map((r) => r.nextAttemptAt), 'timestamptz'), arrayOf(answered.map((r) => r.httpStatus), 'int'),
      arrayOf(answered.map((r) => r.error), 'text'),
    ];
    const record = await rowsRead(RECORD_RESULTS.text, ['text[]', 'text[]', 'int[]', 'text[]', 'timestamptz[]', 'int[]', 'text[]'], args);
    // Per answer: its row, its line's next open entry, that delivery's row. Hashing every pending
    // delivery reads them all (the backlog) each time; walking the open ones per answer, LINES × BATCH and more.
    expect(record.read).toBeLessThan(BATCH * 6);

    await events.recordResults(answered);
    const { rows } = await stack.db.query(
      `SELECT count(*) FILTER (WHERE next_attempt_at <= now())::int AS due, count(*)::int AS all FROM order_event_deliveries WHERE event_id = $1 AND endpoint = ANY($2)`,
      [third, endpoints],
    );
    expect(rows[0]).toEqual({ due: BATCH, all: LINES });
    const delivered = await stack.db.query(`SELECT count(*)::int AS n FROM order_event_deliveries WHERE event_id = $1 AND status = 'delivered'`, [second]);
    expect(delivered.rows[0].n).toBe(BATCH);
  });

  it('parks: each waiting delivery found by its key, not by walking every pending one per candidate', async () => {
    // Lines of another order whose first event waits for its retry (in 10 min) and whose second,
    // due for 2 min, waits behind it: a backlog the sweep parks. The statistics still say none is pending.
    const other = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body.id as string;
    const parkEndpoints = endpoints.map((e) => `${e}/park`);
    for (const [sequence, inS] of [[1, 600], [2, -120]] as const) {
      const id = `oev_plans_park_${sequence}`;
      await stack.db.query(`INSERT INTO order_events (id, order_id, sequence, type, data, created_at) VALUES ($1, $2, $3, 'order.paid', '{}', now())`, [id, other, sequence]);
      await stack.db.query(
        `INSERT INTO order_event_deliveries (event_id, endpoint, order_id, sequence, status, next_attempt_at, retry_from)
         SELECT $1, e, $2, $3, 'pending', now() + make_interval(secs => $4), now() FROM unnest($5::text[]) AS e`,
        [id, other, sequence, inS, parkEndpoints],
      );
    }

    // The function as the sweep calls it, in a transaction of the test's own: its row counters are this transaction's.
    await stack.db.query('BEGIN');
    try {
      const parked = await stack.db.query(`SELECT order_event_park_blocked(500, 30000, 3600000, $1) AS n`, [parkEndpoints]);
      const { rows } = await stack.db.query(`SELECT idx_tup_fetch + seq_tup_read AS read FROM pg_stat_xact_user_tables WHERE relname = 'order_event_deliveries'`);
      expect(parked.rows[0].n).toBe(LINES);
      // Per parked delivery a handful (its candidate, its blocker, its row to update: ~1,900 rows in all
      // here); walking every pending delivery per candidate read LINES × LINES and more (90,792).
      expect(Number(rows[0].read)).toBeLessThan(LINES * 10);
    } finally {
      await stack.db.query('ROLLBACK');
    }
  });
});
