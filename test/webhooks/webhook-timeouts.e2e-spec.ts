import { Client } from 'pg';
import { INTAKE_STATEMENT_TIMEOUT_MS } from '../../src/database/database';
import { startTestStack, TestStack } from '../support/test-app';
import { deliver, unrelatedEvent } from '../support/webhook-burst';

describe('Webhook intake behind a locked table', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack({ forwardWebhooks: false });
  });
  afterAll(async () => stack?.stop());

  it('answers 503 within its timeouts while webhook_events is locked (the PSP retries), then 2xx once the lock is gone', async () => {
    const events = Array.from({ length: 40 }, () => unrelatedEvent());
    const holder = new Client({ connectionString: stack.databaseUrl });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE webhook_events IN ACCESS EXCLUSIVE MODE');
      const locked = await Promise.all(events.map((e) => deliver(stack.url, e)));
      expect(locked.map((d) => d.status)).toEqual(events.map(() => 503));
      // Not the 29 s hang of a request waiting on the lock: each answer came within the intake's statement timeout and a margin.
      expect(Math.max(...locked.map((d) => d.ms))).toBeLessThan(2 * INTAKE_STATEMENT_TIMEOUT_MS);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
    const retried = await Promise.all(events.map((e) => deliver(stack.url, e)));
    expect(retried.map((d) => d.status)).toEqual(events.map(() => 200));
    const stored = await stack.db.query(`SELECT count(*)::int AS n FROM webhook_events WHERE id = ANY($1)`, [events.map((e) => e.id)]);
    expect(stored.rows[0].n).toBe(40);
  }, 60000);
});
