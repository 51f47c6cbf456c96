import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { InjectDataSource } from '@nestjs/typeorm';
import type Stripe from 'stripe';
import { DataSource, EntityManager } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { reconcilerFixes, reconcilerPasses, reconcilerPspCalls } from '../metrics/metrics';
import { PaymentApplier } from '../payments/payment-applier';
import { readEvent } from '../payments/payment-state';
import { StripeClient } from '../payments/psp/stripe.client';
import { WebhookInbox } from '../webhooks/webhook-inbox.service';

/** Key of the transaction-scoped advisory lock that elects the one runner (migrations use 7355608). */
const RECONCILER_LOCK = 7355609;
const STATE_NAME = 'events';
const EVENTS_PAGE = 100;
/** A guard against a runaway listing, not a budget: a normal pass reads one page. */
const MAX_EVENT_PAGES = 100;
/** PaymentIntents retrieved per pass at most: a large backlog of stale payments is worked off over several passes. */
const MAX_STALE_PER_PASS = 25;
/** PaymentIntent statuses that can still change on their own (the partial index payments_open_checked_idx). */
const OPEN_STATUSES = ['requires_payment_method', 'requires_confirmation', 'requires_action', 'processing', 'requires_capture'];

export interface ReconcileReport {
  result: 'ok' | 'skipped' | 'failed';
  eventsListed: number;
  missedEvents: number;
  stalePaymentsChecked: number;
  paymentsFixed: number;
  pspCalls: number;
  error?: string;
}

/**
 * Finds what webhooks missed. One runner across all instances: the pass runs
 * in one transaction that first takes pg_try_advisory_xact_lock (a session
 * lock would be shared by everything on the embedded PGlite, which is one
 * session), and everything in the pass uses that transaction's manager.
 *
 * 1. Pages the PSP's Events API from the persisted cursor and feeds unseen
 *    events into the same inbox path as the webhook controller.
 * 2. Retrieves PaymentIntents of open payments nobody has confirmed for
 *    RECONCILE_STALE_AFTER_MS and applies them.
 * A pass with nothing new costs one Events API call, however many orders are open.
 */
@Injectable()
export class ReconcilerService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ReconcilerService.name);
  private running?: Promise<ReconcileReport>;

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly psp: StripeClient,
    private readonly inbox: WebhookInbox,
    private readonly applier: PaymentApplier,
    private readonly scheduler: SchedulerRegistry,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.scheduler.addInterval('reconciler', setInterval(() => void this.runOnce(), this.config.reconcileIntervalMs));
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.scheduler.doesExist('interval', 'reconciler')) this.scheduler.deleteInterval('reconciler');
    await this.running?.catch(() => undefined);
  }

  /** One pass; never throws (a scheduler swallows errors, so failures are recorded instead). */
  runOnce(): Promise<ReconcileReport> {
    // Overlapping calls in one process share the pass in flight.
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<ReconcileReport> {
    const report: ReconcileReport = { result: 'ok', eventsListed: 0, missedEvents: 0, stalePaymentsChecked: 0, paymentsFixed: 0, pspCalls: 0 };
    let newEventIds: string[] = [];
    try {
      const elected = await this.db.transaction(async (manager) => {
        const [lock] = (await manager.query(`SELECT pg_try_advisory_xact_lock($1) AS locked`, [RECONCILER_LOCK])) as Array<{ locked: boolean }>;
        if (!lock?.locked) return false;
        newEventIds = await this.pullEvents(manager, report);
        await this.checkStalePayments(manager, report);
        await manager.query(`UPDATE reconciler_state SET last_run_at = now(), last_error = $2 WHERE name = $1`, [STATE_NAME, report.error ?? null]);
        return true;
      });
      if (!elected) {
        report.result = 'skipped';
        reconcilerPasses.inc({ result: 'skipped' });
        return report;
      }
    } catch (err) {
      return this.failed(report, err);
    }
    // After commit, so the processor finds the rows; what Redis refuses now the relay queues later.
    await this.inbox.enqueueAndMark(newEventIds);
    if (report.error) return this.failed(report, new Error(report.error), false);
    reconcilerPasses.inc({ result: 'ok' });
    if (report.missedEvents + report.paymentsFixed > 0) this.logger.log({ msg: 'reconciler pass found missed changes', ...report });
    return report;
  }

  /** Lists events newer than the cursor (Stripe lists newest first) and stores the ones not seen yet. */
  private async pullEvents(manager: EntityManager, report: ReconcileReport): Promise<string[]> {
    await manager.query(`INSERT INTO reconciler_state (name, events_cursor_created) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING`, [STATE_NAME]);
    const [state] = (await manager.query(`SELECT events_cursor_created FROM reconciler_state WHERE name = $1 FOR UPDATE`, [STATE_NAME])) as Array<{
      events_cursor_created: string;
    }>;
    const cursor = Number(state?.events_cursor_created ?? 0);
    let newest = cursor;
    let startingAfter: string | undefined;
    const stored: string[] = [];
    const touchedIntents = new Set<string>();
    for (let page = 0; page < MAX_EVENT_PAGES; page++) {
      // gte, not gt: events of the cursor's second may have been emitted after the last pass; seen ids are skipped.
      const list = await this.psp.listEvents({ created: { gte: cursor }, limit: EVENTS_PAGE, ...(startingAfter ? { starting_after: startingAfter } : {}) });
      report.pspCalls++;
      reconcilerPspCalls.inc();
      report.eventsListed += list.data.length;
      for (const event of list.data) newest = Math.max(newest, event.created);
      // One INSERT for the page; ids already in the inbox (delivered, or seen by an earlier pass) are skipped by it.
      const fresh = list.data.length
        ? await this.inbox.storeWith(manager, list.data.map((e) => ({ id: e.id, type: e.type, created: e.created, payload: JSON.stringify(e) })), 'reconciler')
        : new Set<string>();
      for (const event of list.data) {
        if (!fresh.has(event.id)) continue;
        stored.push(event.id);
        reconcilerFixes.inc({ kind: 'missed_event' });
        const intentId = readEvent(event)?.paymentIntentId;
        if (intentId) touchedIntents.add(intentId);
      }
      if (!list.has_more || list.data.length === 0) break;
      startingAfter = list.data[list.data.length - 1]?.id;
      if (page === MAX_EVENT_PAGES - 1) this.logger.warn({ msg: 'event listing cut short; the cursor stays for the next pass', cursor });
    }
    report.missedEvents = stored.length;
    // An event on its way to the processor is news about its payment: no need to retrieve it as stale too.
    if (touchedIntents.size > 0) await manager.query(`UPDATE payments SET checked_at = now() WHERE id = ANY($1)`, [[...touchedIntents]]);
    if (newest > cursor) await manager.query(`UPDATE reconciler_state SET events_cursor_created = $2 WHERE name = $1`, [STATE_NAME, newest]);
    return stored;
  }

  /** Open payments nobody confirmed for a while: ask the PSP, apply what it says. */
  private async checkStalePayments(manager: EntityManager, report: ReconcileReport): Promise<void> {
    const stale = (await manager.query(
      `SELECT id FROM payments
        WHERE status = ANY($1) AND checked_at < now() - make_interval(secs => $2::double precision / 1000)
        ORDER BY checked_at LIMIT ${MAX_STALE_PER_PASS}`,
      [OPEN_STATUSES, this.config.reconcileStaleAfterMs],
    )) as Array<{ id: string }>;
    for (const payment of stale) {
      let intent: Stripe.PaymentIntent;
      try {
        report.pspCalls++;
        reconcilerPspCalls.inc();
        intent = await this.psp.retrievePaymentIntent(payment.id);
      } catch (err) {
        // One PaymentIntent the PSP will not show must not stop the others; the pass is still reported failed.
        report.error = `retrieving ${payment.id}: ${(err as Error).message}`;
        continue;
      }
      report.stalePaymentsChecked++;
      const decision = await this.applier.applyCurrentIntent(manager, intent);
      if (decision && decision.steps.length > 0) {
        report.paymentsFixed++;
        reconcilerFixes.inc({ kind: 'stale_payment' });
      }
    }
  }

  private async failed(report: ReconcileReport, err: unknown, record = true): Promise<ReconcileReport> {
    report.result = 'failed';
    report.error = (err as Error).message ?? String(err);
    reconcilerPasses.inc({ result: 'failed' });
    this.logger.error({ msg: 'reconciler pass failed', error: report.error });
    if (record) {
      await this.db
        .query(
          `INSERT INTO reconciler_state (name, last_run_at, last_error) VALUES ($1, now(), $2)
           ON CONFLICT (name) DO UPDATE SET last_run_at = now(), last_error = EXCLUDED.last_error`,
          [STATE_NAME, report.error.slice(0, 2000)],
        )
        .catch((dbErr: Error) => this.logger.error({ msg: 'could not record the reconciler failure', error: dbErr.message }));
    }
    return report;
  }
}
