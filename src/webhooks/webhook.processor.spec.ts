import type { Job } from 'bull';
import { ApplyBacklog } from '../common/apply-backlog';
import { Metrics } from '../metrics/metrics';
import type { EventOutcome, PaymentApplier } from './payment-applier';
import type { TransactionTurn } from './transaction-turn';
import type { InboxRepository } from './webhook-inbox.repository';
import { WebhookProcessor } from './webhook.processor';
import type { WebhookJob } from './webhook-queue';

/** The applier replaced: each call is one transaction through the turn, held open until the test lets it end. */
class HeldApplier {
  readonly transactions: string[][] = [];
  open = 0;
  mostOpen = 0;
  private held: Array<() => void> = [];

  applyEvents(ids: string[], turn: TransactionTurn): Promise<Map<string, EventOutcome>> {
    return turn.run(async () => {
      this.transactions.push(ids);
      this.mostOpen = Math.max(this.mostOpen, ++this.open);
      await new Promise<void>((resolve) => this.held.push(resolve));
      this.open--;
      return new Map(ids.map((id) => [id, 'applied' as const]));
    });
  }

  /** Lets every transaction now open commit. */
  commit(): void {
    const held = this.held;
    this.held = [];
    for (const resolve of held) resolve();
  }
}

const jobOf = (...ids: string[]) => ({ id: ids.join('+'), data: { ids }, attemptsMade: 0, opts: { attempts: 5 } }) as unknown as Job<WebhookJob>;
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('WebhookProcessor batching', () => {
  let applier: HeldApplier;
  let processor: WebhookProcessor;
  let backlog: ApplyBacklog;

  beforeEach(() => {
    applier = new HeldApplier();
    backlog = new ApplyBacklog();
    processor = new WebhookProcessor(applier as unknown as PaymentApplier, {} as InboxRepository, new Metrics(), backlog);
  });

  it('applies one transaction at a time, and what arrived during it together in the next', async () => {
    const first = processor.handle(jobOf('evt_a'));
    await settle();
    expect(applier.transactions).toEqual([['evt_a']]);

    const later = [processor.handle(jobOf('evt_b')), processor.handle(jobOf('evt_c', 'evt_d'))];
    await settle();
    expect(applier.transactions).toEqual([['evt_a']]);

    applier.commit();
    await expect(first).resolves.toBe('1 applied');
    await settle();
    expect(applier.transactions).toEqual([['evt_a'], ['evt_b', 'evt_c', 'evt_d']]);
    applier.commit();
    await expect(Promise.all(later)).resolves.toEqual(['1 applied', '2 applied']);
    expect(applier.mostOpen).toBe(1);
    expect(backlog.behind()).toBe(false);
  });

  it('cuts a backlog into transactions of at most 512 events', async () => {
    const blocker = processor.handle(jobOf('evt_first'));
    await settle();
    const ids = Array.from({ length: 600 }, (_, i) => `evt_${i}`);
    const large = processor.handle(jobOf(...ids));
    await settle();
    applier.commit();
    await blocker;
    await settle();
    applier.commit();
    await settle();
    applier.commit();
    await expect(large).resolves.toBe('600 applied');
    expect(applier.transactions.map((t) => t.length)).toEqual([1, 512, 88]);
    // Batches that large tell the order-event sender to wait (see ApplyBacklog).
    expect(backlog.behind()).toBe(true);
  });
});
