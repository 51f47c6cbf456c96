import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Fills gauges from their source just before a scrape (a queue count, an inbox age). */
export type ScrapeCollector = () => Promise<void>;

/**
 * Settle's Prometheus metrics: one instance per process, injected where
 * something is counted (a test or a second app in one process gets its own).
 */
@Injectable()
export class Metrics {
  readonly registry = new Registry();
  private readonly collectors: ScrapeCollector[] = [];

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'settle_process_' });
  }

  /** Registers a collector run at every scrape; the owner of the data registers it, so this folder imports no feature. */
  onScrape(collector: ScrapeCollector): void {
    this.collectors.push(collector);
  }

  /** The text exposition, after every collector has run (a failing one keeps its last values). */
  async scrape(): Promise<string> {
    await Promise.all(this.collectors.map((collect) => collect().catch(() => undefined)));
    return this.registry.metrics();
  }

  readonly webhooksReceived = new Counter({
    name: 'settle_webhooks_received_total',
    help: 'Signed PSP events accepted into the inbox, by event type',
    labelNames: ['type'],
    registers: [this.registry],
  });

  readonly webhooksRejected = new Counter({
    name: 'settle_webhooks_rejected_total',
    help: 'Webhook requests refused, by reason (signature, stale, too_large, malformed, storage; not_allowed: 403 by WEBHOOK_ALLOWED_IPS; throttled: 429 unverified)',
    labelNames: ['reason'],
    registers: [this.registry],
  });

  readonly webhookSendersThrottled = new Counter({
    name: 'settle_webhook_senders_throttled_total',
    help: 'Times a client address was throttled for sending WEBHOOK_REFUSED_PER_MINUTE deliveries that failed verification (once per address and window)',
    registers: [this.registry],
  });

  readonly webhooksDuplicate = new Counter({
    name: 'settle_webhooks_duplicate_total',
    help: 'Deliveries of an event already in the inbox (acknowledged, not queued again)',
    registers: [this.registry],
  });

  readonly eventProcessingSeconds = new Histogram({
    name: 'settle_event_processing_seconds',
    help: 'Time to apply one PSP event (transaction included), by outcome',
    labelNames: ['outcome'],
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly eventBatchSize = new Histogram({
    name: 'settle_event_batch_size',
    help: 'Events applied together in one transaction (group commit under load; 1 when quiet)',
    buckets: [1, 2, 4, 8, 16, 32, 64],
    registers: [this.registry],
  });

  readonly orderTransitions = new Counter({
    name: 'settle_order_transitions_total',
    help: 'Order status changes, by from and to',
    labelNames: ['from', 'to'],
    registers: [this.registry],
  });

  readonly reconcilerPasses = new Counter({
    name: 'settle_reconciler_passes_total',
    help: 'Reconciler passes, by result (ok, failed, skipped when another instance holds the lock)',
    labelNames: ['result'],
    registers: [this.registry],
  });

  readonly reconcilerFixes = new Counter({
    name: 'settle_reconciler_fixes_total',
    help: 'What the reconciler found that webhooks had missed, by kind (missed_event, stale_payment)',
    labelNames: ['kind'],
    registers: [this.registry],
  });

  readonly reconcilerPspCalls = new Counter({
    name: 'settle_reconciler_psp_calls_total',
    help: 'PSP API calls made by the reconciler',
    registers: [this.registry],
  });

  readonly pspCallSeconds = new Histogram({
    name: 'settle_psp_call_seconds',
    help: 'PSP API call latency, by operation and result',
    labelNames: ['operation', 'result'],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly pspCallErrors = new Counter({
    name: 'settle_psp_call_errors_total',
    help: 'PSP API calls that failed, by operation and error type',
    labelNames: ['operation', 'type'],
    registers: [this.registry],
  });

  /** Filled at scrape time by the webhooks module's collector (Bull and the inbox). */
  readonly queueJobs = new Gauge({
    name: 'settle_queue_jobs',
    help: 'Webhook queue jobs by state (waiting, active, delayed, failed) and inbox rows marked dead',
    labelNames: ['state'],
    registers: [this.registry],
  });

  readonly inboxLagSeconds = new Gauge({
    name: 'settle_inbox_lag_seconds',
    help: 'Age of the oldest stored event not yet processed (0 when none)',
    registers: [this.registry],
  });

  readonly orderEventDeliveryAttempts = new Counter({
    name: 'settle_order_event_delivery_attempts_total',
    help: 'Order event POSTs to endpoints, by result (delivered, http_error, timeout, network)',
    labelNames: ['result'],
    registers: [this.registry],
  });

  readonly orderEventDeliverySeconds = new Histogram({
    name: 'settle_order_event_delivery_seconds',
    help: "From an order event's commit to its endpoint's 2xx (retries included)",
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 30, 300, 3600],
    registers: [this.registry],
  });

  /** Filled at scrape time by the order-events module's collector. */
  readonly orderEventDeliveries = new Gauge({
    name: 'settle_order_event_deliveries',
    help: 'Order event deliveries by state: pending (waiting or retrying) and failed (gave up after 72 h)',
    labelNames: ['state'],
    registers: [this.registry],
  });

  /** Filled at scrape time by the orders module's collector. */
  readonly authorizationsExpiring = new Gauge({
    name: 'settle_authorizations_expiring_24h',
    help: 'Authorized (manual capture) orders whose capture window ends within 24 hours: capture them or they lapse',
    registers: [this.registry],
  });

  readonly ordersExpired = new Counter({
    name: 'settle_orders_expired_total',
    help: 'Orders expired because they stayed unpaid for ORDER_PAYMENT_TIMEOUT_MINUTES',
    registers: [this.registry],
  });

  readonly unexpectedPayments = new Counter({
    name: 'settle_unexpected_payments_total',
    help: 'Succeeded payments naming an order that are not its own PaymentIntent, or came after it was canceled or expired (the order goes to needs_review)',
    registers: [this.registry],
  });

  readonly eventApiVersionMismatch = new Counter({
    name: 'settle_event_api_version_mismatch_total',
    help: "PSP events rendered in another API version than the SDK's, by version (their fields may differ from what Settle reads)",
    labelNames: ['api_version'],
    registers: [this.registry],
  });
}
