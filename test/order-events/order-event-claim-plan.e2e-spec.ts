import request from 'supertest';
import { OrderEventsRepository } from '../../src/order-events/order-events.repository';
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
 * ANALYZE leaves say almost nothing is pending; then a burst comes. The claim
 * must still look each candidate's line up by its index (order, endpoint), not
 * walk every open delivery for each candidate: that plan made a claim of 64
 * take 0.8 s with 12,000 pending (found by the bench's delivery phase, whose
 * second flood with delivery went out at a quarter of the first one's rate
 * with PostgreSQL saturated). Counted in rows read, not timed.
 */
describe('Order events: the claim looks each line up by index whatever the statistics say', () => {
  const LINES = 300;
  const CLAIM = 64;
  const endpoints = Array.from({ length: LINES }, (_, i) => `http://claim-plan.invalid/${i}`);
  let stack: TestStack;
  let events: OrderEventsRepository;
  let orderId: string;

  beforeAll(async () => {
    stack = await startTestStack({ forwardWebhooks: false });
    events = stack.app.get(OrderEventsRepository);
    orderId = (await request(stack.url).post('/orders').send(orderBody()).expect(201)).body.id;
  });
  afterAll(async () => stack?.stop());

  /** Event `sequence` of the order, with a delivery in `status` to every endpoint. */
  async function addEvent(sequence: number, status: 'delivered' | 'pending'): Promise<string> {
    const id = `oev_claim_plan_${sequence}`;
    await stack.db.query(`INSERT INTO order_events (id, order_id, sequence, type, data, created_at) VALUES ($1, $2, $3, 'order.paid', '{}', now())`, [id, orderId, sequence]);
    await stack.db.query(
      `INSERT INTO order_event_deliveries (event_id, endpoint, order_id, sequence, status, next_attempt_at, retry_from)
       SELECT $1, e, $2, $3, $4, now() - interval '1 second', now() FROM unnest($5::text[]) AS e`,
      [id, orderId, sequence, status, endpoints],
    );
    return id;
  }

  /**
   * The claim function's own statement under EXPLAIN ANALYZE, with the
   * function's planner settings and a generic plan (as a SQL function plans
   * it), in a transaction rolled back after: nothing is leased.
   */
  async function explainClaim(): Promise<{ claimed: number; rowsRead: number }> {
    const { rows } = await stack.db.query(`SELECT prosrc, proconfig FROM pg_proc WHERE proname = 'order_event_claim_due'`);
    const fn = rows[0] as { prosrc: string; proconfig: string[] | null };
    await stack.db.query('BEGIN');
    try {
      for (const setting of fn.proconfig ?? []) {
        const [name, value] = setting.split('=');
        await stack.db.query(`SET LOCAL ${name} = ${value}`);
      }
      await stack.db.query('SET LOCAL plan_cache_mode = force_generic_plan');
      await stack.db.query(`PREPARE claim_plan(integer, integer, text[]) AS ${fn.prosrc}`);
      const list = `ARRAY[${endpoints.map((e) => `'${e}'`).join(', ')}]`;
      const explained = await stack.db.query(`EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim_plan(${CLAIM}, 60000, ${list})`);
      const plan = (explained.rows[0]['QUERY PLAN'] as Array<{ Plan: PlanNode }>)[0]!.Plan;
      return { claimed: plan['Actual Rows'], rowsRead: deliveryRowsRead(plan) };
    } finally {
      await stack.db.query('ROLLBACK');
      await stack.db.query('DEALLOCATE ALL');
    }
  }

  it('reads a few rows per delivery it claims after an ANALYZE that saw none pending', async () => {
    await addEvent(1, 'delivered');
    await stack.db.query('ANALYZE order_event_deliveries');
    const next = await addEvent(2, 'pending');

    const { claimed, rowsRead } = await explainClaim();
    expect(claimed).toBe(CLAIM);
    // Each claimed delivery: its entry in the due index, its line's first open entry, its row to update.
    // Walking every open delivery per candidate read LINES × CLAIM (19,200) here.
    expect(rowsRead).toBeLessThan(CLAIM * 10);

    // And the claim itself hands out the head of 64 different lines, once each.
    const leased = await events.claimDue(CLAIM, 60_000, endpoints);
    expect(leased).toHaveLength(CLAIM);
    expect(new Set(leased.map((d) => d.eventId))).toEqual(new Set([next]));
    expect(new Set(leased.map((d) => d.endpoint)).size).toBe(CLAIM);
    expect(await events.claimDue(LINES, 60_000, endpoints)).toHaveLength(LINES - CLAIM);
  });
});
