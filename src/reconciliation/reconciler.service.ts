import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import type Stripe from 'stripe';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { Metrics } from '../metrics/metrics';
import { OrderRepository } from '../orders/order.repository';
import { OrdersService } from '../orders/orders.service';
import { readEvent } from '../orders/payment-state';
import { PspClient } from '../psp/psp-client';
import { PaymentApplier } from '../webhooks/payment-applier';
import { WebhookInbox } from '../webhooks/webhook-inbox.service';
import { ReconcilerStateRepository } from './reconciler-state.repository';

const STATE_NAME = 'events';
/** Payments retrieved per pass at most: a large backlog of stale in-flight payments is worked off over several passes. */
const MAX_STALE_PER_PASS = 25;

/** How much of the Events API one pass reads. */
export interface ListingLimits {
  pageSize: number;
  /** A guard against a runaway listing, not a budget: a normal pass reads one page. */
  maxPages: number;
}

export interface ReconcileReport {
  result: 'ok' | 'skipped' | 'failed';
  eventsListed: number;
  missedEvents: number;
  stalePaymentsChecked: number;
  paymentsFixed: number;
  /** Orders unpaid past ORDER_PAYMENT_TIMEOUT_MINUTES that this pass expired. */
  ordersExpired: number;
  pspCalls: number;
  error?: string;
}

/**
 * Finds what webhooks missed. One runner across all instances (an advisory
 * lock elects it), and no transaction or row lock is held while the PSP is
 * asked:
 * 1. Pages the PSP's Events API from the persisted cursor and stores unseen
 *    events in the inbox (one INSERT a page), to be applied by the processor.
 * 2. Retrieves the PaymentIntents of payments the PSP last reported in flight
 *    (`processing`, `requires_capture`: they change without the customer) that
 *    nobody has confirmed for RECONCILE_STALE_AFTER_MS, then applies each in a
 *    short transaction of its own. A payment waiting on the customer is not
 *    polled: whatever the customer does makes an event that step 1 lists.
 * 3. Expires orders unpaid for ORDER_PAYMENT_TIMEOUT_MINUTES (OrdersService.expireUnpaid):
 *    that takes abandoned payments out of the open set (a payment that won the
 *    race is applied as paid).
 * A pass with nothing new and nothing in flight costs one Events API call,
 * however many orders are open and however long ago they were touched.
 */
@Injectable()
export class ReconcilerService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ReconcilerService.name);
  private running?: Promise<ReconcileReport>;
  private limits: ListingLimits = { pageSize: 100, maxPages: 100 };
  /**
   * Where a listing cut short by maxPages stopped (Stripe lists newest first,
   * so what it did not reach is older): the next pass continues after that
   * event, and the cursor moves only once a listing reaches its end.
   */
  private resume?: { startingAfter: string; newest: number };

  constructor(
    private readonly psp: PspClient,
    private readonly inbox: WebhookInbox,
    private readonly applier: PaymentApplier,
    private readonly orders: OrderRepository,
    private readonly ordersService: OrdersService,
    private readonly state: ReconcilerStateRepository,
    private readonly scheduler: SchedulerRegistry,
    private readonly metrics: Metrics,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.scheduler.addInterval('reconciler', setInterval(() => void this.runOnce(), this.config.reconcileIntervalMs));
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.scheduler.doesExist('interval', 'reconciler')) this.scheduler.deleteInterval('reconciler');
    await this.running?.catch(() => undefined);
  }

  /** For tests: a small page size or page limit. */
  setListingLimits(limits: ListingLimits): void {
    this.limits = limits;
  }

  /** One pass; never throws (a scheduler swallows errors, so failures are recorded instead). */
  runOnce(): Promise<ReconcileReport> {
    // Overlapping calls in one process share the pass in flight.
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<ReconcileReport> {
    const report: ReconcileReport = { result: 'ok', eventsListed: 0, missedEvents: 0, stalePaymentsChecked: 0, paymentsFixed: 0, ordersExpired: 0, pspCalls: 0 };
    const newEventIds: string[] = [];
    try {
      const elected = await this.state.whileElected(async () => {
        try {
          await this.pullEvents(report, newEventIds);
          await this.checkStalePayments(report);
          report.ordersExpired = await this.ordersService.expireUnpaid();
          this.metrics.ordersExpired.inc(report.ordersExpired);
          await this.state.recordRun(STATE_NAME, report.error ?? null);
        } finally {
          // What was stored is queued even when the pass failed later; what Redis refuses now the relay queues later.
          await this.inbox.enqueueEach(newEventIds);
        }
      });
      if (elected === 'skipped') {
        report.result = 'skipped';
        this.metrics.reconcilerPasses.inc({ result: 'skipped' });
        return report;
      }
    } catch (err) {
      return this.failed(report, err);
    }
    if (report.error) return this.failed(report, new Error(report.error), false);
    this.metrics.reconcilerPasses.inc({ result: 'ok' });
    if (report.missedEvents + report.paymentsFixed + report.ordersExpired > 0) this.logger.log({ msg: 'reconciler pass found missed changes', ...report });
    return report;
  }

  /** Lists events newer than the cursor (Stripe lists newest first) and stores the ones not seen yet; their ids go to `stored`. */
  private async pullEvents(report: ReconcileReport, stored: string[]): Promise<void> {
    const cursor = await this.state.readCursor(STATE_NAME);
    let newest = Math.max(cursor, this.resume?.newest ?? 0);
    let startingAfter = this.resume?.startingAfter;
    let complete = false;
    const touchedIntents = new Set<string>();
    for (let page = 0; page < this.limits.maxPages; page++) {
      // gte, not gt: events of the cursor's second may have been emitted after the last pass; seen ids are skipped.
      const list = await this.psp.listEvents({ created: { gte: cursor }, limit: this.limits.pageSize, ...(startingAfter ? { starting_after: startingAfter } : {}) });
      report.pspCalls++;
      this.metrics.reconcilerPspCalls.inc();
      report.eventsListed += list.data.length;
      for (const event of list.data) newest = Math.max(newest, event.created);
      // One INSERT for the page; ids already in the inbox (delivered, or seen by an earlier pass) are skipped by it.
      const fresh = await this.inbox.storeMany(list.data.map((e) => ({ id: e.id, type: e.type, created: e.created, payload: JSON.stringify(e) })), 'reconciler');
      for (const event of list.data) {
        if (!fresh.has(event.id)) continue;
        stored.push(event.id);
        report.missedEvents++;
        this.metrics.reconcilerFixes.inc({ kind: 'missed_event' });
        const intentId = readEvent(event)?.paymentIntentId;
        if (intentId) touchedIntents.add(intentId);
      }
      if (!list.has_more || list.data.length === 0) {
        complete = true;
        break;
      }
      startingAfter = list.data[list.data.length - 1]?.id;
    }
    // An event on its way to the processor is news about its payment: no need to retrieve it as stale too.
    await this.orders.markPaymentsChecked([...touchedIntents]);
    if (complete) {
      this.resume = undefined;
      if (newest > cursor) await this.state.saveCursor(STATE_NAME, newest);
    } else if (startingAfter) {
      this.resume = { startingAfter, newest };
      this.logger.warn({ msg: 'event listing cut short; the cursor stays and the next pass continues where this one stopped', cursor, startingAfter });
    }
  }

  /** In-flight payments nobody confirmed for a while: ask the PSP (no lock held), then apply each answer in its own transaction. */
  private async checkStalePayments(report: ReconcileReport): Promise<void> {
    const stale = await this.orders.findStalePaymentIds(this.config.reconcileStaleAfterMs, MAX_STALE_PER_PASS);
    for (const id of stale) {
      let retrieved: { intent: Stripe.PaymentIntent } | { session: Stripe.Checkout.Session };
      try {
        report.pspCalls++;
        this.metrics.reconcilerPspCalls.inc();
        // A payment still keyed by its Checkout Session (no event named its PaymentIntent yet): the session says where it is.
        retrieved = id.startsWith('cs_') ? { session: await this.psp.retrieveCheckoutSession(id) } : { intent: await this.psp.retrievePaymentIntent(id) };
      } catch (err) {
        // One PaymentIntent the PSP will not show must not stop the others; the pass is still reported failed.
        report.error = `retrieving ${id}: ${(err as Error).message}`;
        continue;
      }
      report.stalePaymentsChecked++;
      const decision = 'session' in retrieved ? await this.applier.applyRetrievedSession(retrieved.session) : await this.applier.applyRetrievedIntent(retrieved.intent);
      if (decision && decision.steps.length > 0) {
        report.paymentsFixed++;
        this.metrics.reconcilerFixes.inc({ kind: 'stale_payment' });
      }
    }
  }

  private async failed(report: ReconcileReport, err: unknown, record = true): Promise<ReconcileReport> {
    report.result = 'failed';
    report.error = (err as Error).message ?? String(err);
    this.metrics.reconcilerPasses.inc({ result: 'failed' });
    this.logger.error({ msg: 'reconciler pass failed', error: report.error });
    if (record) {
      await this.state.recordRun(STATE_NAME, report.error).catch((dbErr: Error) => this.logger.error({ msg: 'could not record the reconciler failure', error: dbErr.message }));
    }
    return report;
  }
}
