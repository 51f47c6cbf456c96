import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Settle's Prometheus metrics, one registry per process. Plain module-level
 * objects so that pure helpers (transitionOrder) can count without injection.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'settle_process_' });

export const webhooksReceived = new Counter({
  name: 'settle_webhooks_received_total',
  help: 'Signed PSP events accepted into the inbox, by event type',
  labelNames: ['type'],
  registers: [registry],
});

export const webhooksRejected = new Counter({
  name: 'settle_webhooks_rejected_total',
  help: 'Webhook requests refused, by reason (signature, stale, too_large, malformed, storage)',
  labelNames: ['reason'],
  registers: [registry],
});

export const webhooksDuplicate = new Counter({
  name: 'settle_webhooks_duplicate_total',
  help: 'Deliveries of an event already in the inbox (acknowledged, not queued again)',
  registers: [registry],
});

export const eventProcessingSeconds = new Histogram({
  name: 'settle_event_processing_seconds',
  help: 'Time to apply one PSP event (transaction included), by outcome',
  labelNames: ['outcome'],
  buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  registers: [registry],
});

export const eventBatchSize = new Histogram({
  name: 'settle_event_batch_size',
  help: 'Events applied together in one transaction (group commit under load; 1 when quiet)',
  buckets: [1, 2, 4, 8, 16, 32, 64],
  registers: [registry],
});

export const orderTransitions = new Counter({
  name: 'settle_order_transitions_total',
  help: 'Order status changes, by from and to',
  labelNames: ['from', 'to'],
  registers: [registry],
});

export const reconcilerPasses = new Counter({
  name: 'settle_reconciler_passes_total',
  help: 'Reconciler passes, by result (ok, failed, skipped when another instance holds the lock)',
  labelNames: ['result'],
  registers: [registry],
});

export const reconcilerFixes = new Counter({
  name: 'settle_reconciler_fixes_total',
  help: 'What the reconciler found that webhooks had missed, by kind (missed_event, stale_payment)',
  labelNames: ['kind'],
  registers: [registry],
});

export const reconcilerPspCalls = new Counter({
  name: 'settle_reconciler_psp_calls_total',
  help: 'PSP API calls made by the reconciler',
  registers: [registry],
});

export const pspCallSeconds = new Histogram({
  name: 'settle_psp_call_seconds',
  help: 'PSP API call latency, by operation and result',
  labelNames: ['operation', 'result'],
  buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});

export const pspCallErrors = new Counter({
  name: 'settle_psp_call_errors_total',
  help: 'PSP API calls that failed, by operation and error type',
  labelNames: ['operation', 'type'],
  registers: [registry],
});

/** Filled at scrape time from Bull and the inbox (see MetricsController). */
export const queueJobs = new Gauge({
  name: 'settle_queue_jobs',
  help: 'Webhook queue jobs by state (waiting, active, delayed, failed) and inbox rows marked dead',
  labelNames: ['state'],
  registers: [registry],
});

export const inboxLagSeconds = new Gauge({
  name: 'settle_inbox_lag_seconds',
  help: 'Age of the oldest stored event not yet processed (0 when none)',
  registers: [registry],
});

export const orderEventDeliveryAttempts = new Counter({
  name: 'settle_order_event_delivery_attempts_total',
  help: 'Order event POSTs to endpoints, by result (delivered, http_error, timeout, network)',
  labelNames: ['result'],
  registers: [registry],
});

export const orderEventDeliverySeconds = new Histogram({
  name: 'settle_order_event_delivery_seconds',
  help: "From an order event's commit to its endpoint's 2xx (retries included)",
  buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 30, 300, 3600],
  registers: [registry],
});

/** Filled at scrape time by the order-events module (its `collect`). */
export const orderEventDeliveries = new Gauge({
  name: 'settle_order_event_deliveries',
  help: 'Order event deliveries by state: pending (waiting or retrying) and failed (gave up after 72 h)',
  labelNames: ['state'],
  registers: [registry],
});
