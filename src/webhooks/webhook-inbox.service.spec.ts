import type { Queue } from 'bull';
import { Metrics } from '../metrics/metrics';
import type { InboxEventInput, InboxRepository } from './webhook-inbox.repository';
import { JOB_EVENTS, JOB_HOLD_MS, WebhookInbox } from './webhook-inbox.service';
import type { WebhookJob } from './webhook-queue';

/** The repository replaced: each INSERT waits until the test lets it commit, and records the job its rows name. */
class HeldRows {
  readonly inserts: Array<{ ids: string[]; jobId: string | null }> = [];
  private held: Array<() => void> = [];

  insertMany(events: InboxEventInput[], _via: string, jobId: string | null): Promise<Set<string>> {
    this.inserts.push({ ids: events.map((e) => e.id), jobId });
    return new Promise((resolve) => this.held.push(() => resolve(new Set(events.map((e) => e.id)))));
  }

  /** Commits the INSERT in flight. */
  commit(): void {
    this.held.shift()?.();
  }
}

const head = (id: string) => ({ id, type: 'payment_intent.succeeded', created: 1_700_000_000 });
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('WebhookInbox jobs', () => {
  let rows: HeldRows;
  let added: Array<{ jobId: string; ids: string[] }>;
  let inbox: WebhookInbox;
  // The clock stands still unless a test moves it: a slow machine must not close a job by JOB_HOLD_MS between two steps.
  let now: number;
  let clock: jest.SpyInstance<number, []>;

  beforeEach(() => {
    now = 1_000_000;
    clock = jest.spyOn(Date, 'now').mockImplementation(() => now);
    rows = new HeldRows();
    added = [];
    const queue = {
      client: { status: 'ready' },
      addBulk: async (jobs: Array<{ data: WebhookJob; opts: { jobId: string } }>) => {
        for (const j of jobs) added.push({ jobId: j.opts.jobId, ids: 'ids' in j.data ? j.data.ids : [j.data.id] });
        return [];
      },
    } as unknown as Queue<WebhookJob>;
    inbox = new WebhookInbox(rows as unknown as InboxRepository, queue, new Metrics());
  });

  afterEach(() => clock.mockRestore());

  it('queues a lone event as soon as it is stored', async () => {
    const stored = inbox.accept(head('evt_lone'), '{}', 'webhook');
    await settle();
    rows.commit();
    await expect(stored).resolves.toBe('stored');
    await settle();
    expect(added).toEqual([{ jobId: rows.inserts[0]!.jobId, ids: ['evt_lone'] }]);
  });

  it('keeps a job open while more events wait to be stored: the next batch names it too, and it is queued when the intake goes idle', async () => {
    const first = inbox.accept(head('evt_1'), '{}', 'webhook');
    await settle();
    const later = [inbox.accept(head('evt_2'), '{}', 'webhook'), inbox.accept(head('evt_3'), '{}', 'webhook')];
    rows.commit();
    // Answered once stored, without waiting for the job.
    await expect(first).resolves.toBe('stored');
    await settle();
    expect(added).toEqual([]);
    expect(rows.inserts.map((i) => i.ids)).toEqual([['evt_1'], ['evt_2', 'evt_3']]);
    rows.commit();
    await expect(Promise.all(later)).resolves.toEqual(['stored', 'stored']);
    await settle();
    const jobId = rows.inserts[0]!.jobId;
    expect(rows.inserts[1]!.jobId).toBe(jobId);
    expect(added).toEqual([{ jobId, ids: ['evt_1', 'evt_2', 'evt_3'] }]);
  });

  it('closes a job of JOB_EVENTS events or more even while more wait: the next batch starts a job of its own', async () => {
    const first = inbox.accept(head('evt_first'), '{}', 'webhook');
    await settle();
    const burst = Array.from({ length: JOB_EVENTS }, (_, i) => inbox.accept(head(`evt_${i}`), '{}', 'webhook'));
    rows.commit();
    await first;
    await settle();
    const next = inbox.accept(head('evt_next'), '{}', 'webhook');
    rows.commit();
    await Promise.all(burst);
    await settle();
    rows.commit();
    await next;
    await settle();
    expect(rows.inserts.map((i) => i.ids.length)).toEqual([1, JOB_EVENTS, 1]);
    const [one, two, three] = rows.inserts.map((i) => i.jobId);
    expect(two).toBe(one);
    expect(three).not.toBe(one);
    expect(added.map((j) => [j.jobId, j.ids.length])).toEqual([
      [one, JOB_EVENTS + 1],
      [three, 1],
    ]);
  });
  it('closes a job JOB_HOLD_MS after it opened even while more wait', async () => {
    const first = inbox.accept(head('evt_old'), '{}', 'webhook');
    await settle();
    const next = inbox.accept(head('evt_young'), '{}', 'webhook');
    now += JOB_HOLD_MS;
    rows.commit();
    await first;
    await settle();
    expect(added).toEqual([{ jobId: rows.inserts[0]!.jobId, ids: ['evt_old'] }]);
    rows.commit();
    await next;
    await settle();
    expect(rows.inserts[1]!.jobId).not.toBe(rows.inserts[0]!.jobId);
    expect(added[1]).toEqual({ jobId: rows.inserts[1]!.jobId, ids: ['evt_young'] });
  });
});
