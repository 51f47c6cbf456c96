import type Stripe from 'stripe';
import { noSuchObject, StripeApiError } from './errors';
import { AUTOMATIC, EventLog, RequestContext } from './events';
import { newId, nowSeconds } from './ids';

/** Which test card opened the dispute: a chargeback (with its reason) or an inquiry (no funds move). */
export interface DisputeKind {
  inquiry: boolean;
  reason: Stripe.Dispute['reason'];
}

/** The text Stripe's test mode reads in submitted evidence to decide the outcome. */
const WINNING_EVIDENCE = 'winning_evidence';
const LOSING_EVIDENCE = 'losing_evidence';

/** Mock milliseconds (scaled by MOCK_PSP_TIME_SCALE) from payment to dispute, and from submitted test evidence to outcome. */
const OPENING_DELAY_MS = 1000;
const REVIEW_DELAY_MS = 2000;

/** Days the merchant has to answer; card networks give 7 to 21, Stripe's test disputes show about a week. */
const EVIDENCE_WINDOW_DAYS = 7;

/** Evidence fields as Stripe lists them; the update route accepts exactly these. */
export const EVIDENCE_FIELDS = [
  'access_activity_log', 'billing_address', 'cancellation_policy', 'cancellation_policy_disclosure', 'cancellation_rebuttal',
  'customer_communication', 'customer_email_address', 'customer_name', 'customer_purchase_ip', 'customer_signature',
  'duplicate_charge_documentation', 'duplicate_charge_explanation', 'duplicate_charge_id', 'product_description', 'receipt',
  'refund_policy', 'refund_policy_disclosure', 'refund_refusal_explanation', 'service_date', 'service_documentation',
  'shipping_address', 'shipping_carrier', 'shipping_date', 'shipping_documentation', 'shipping_tracking_number',
  'uncategorized_file', 'uncategorized_text',
] as const;

const OPEN_STATUSES: readonly string[] = ['needs_response', 'warning_needs_response'];
const REVIEW_STATUSES: readonly string[] = ['under_review', 'warning_under_review'];

export interface DisputeUpdate {
  evidence?: Record<string, string>;
  /** Stripe's default is true: evidence given is submitted at once; false stages it. */
  submit?: boolean;
  metadata?: Record<string, string>;
}

/**
 * A dispute's life as Stripe's test mode plays it: opened a moment after a
 * test card's payment (`charge.dispute.created`, and `funds_withdrawn` for a
 * chargeback), updated with evidence (`charge.dispute.updated`; submitted
 * evidence moves it to review, and `winning_evidence` / `losing_evidence` in
 * it decide the outcome a while later), closed by the bank or accepted by the
 * merchant (`charge.dispute.closed`, and `funds_reinstated` when won).
 */
export class DisputeDesk {
  /** Charges whose dispute is scheduled but not opened yet, with what it will be. */
  private readonly pendingOpenings = new Map<string, DisputeKind>();

  constructor(
    private readonly disputes: Map<string, Stripe.Dispute>,
    private readonly charges: ReadonlyMap<string, Stripe.Charge>,
    private readonly events: EventLog,
    private readonly schedule: (ms: number, action: () => void) => void,
  ) {}

  get(id: string): Stripe.Dispute {
    const dispute = this.disputes.get(id);
    if (!dispute) throw noSuchObject('dispute', id, 'dispute');
    return dispute;
  }

  scheduleOpening(chargeId: string, kind: DisputeKind): void {
    this.pendingOpenings.set(chargeId, kind);
    this.schedule(OPENING_DELAY_MS, () => this.open(chargeId));
  }

  /**
   * Opens now the scheduled disputes a list asks about. The Stripe CLI's
   * dispute fixtures list the dispute straight after confirming, so Stripe
   * has it by then; the mock keeps its delay (so the dispute's webhooks
   * follow the payment's) and cuts it short when someone asks.
   */
  openDue(filter: { charge?: string; paymentIntent?: string }): void {
    for (const chargeId of [...this.pendingOpenings.keys()]) {
      const charge = this.charges.get(chargeId);
      if (filter.charge && filter.charge !== chargeId) continue;
      if (filter.paymentIntent && charge?.payment_intent !== filter.paymentIntent) continue;
      this.open(chargeId);
    }
  }

  private open(chargeId: string): void {
    const kind = this.pendingOpenings.get(chargeId);
    this.pendingOpenings.delete(chargeId);
    const charge = this.charges.get(chargeId);
    if (!kind || !charge || charge.disputed) return;
    const created = nowSeconds();
    const dispute: Stripe.Dispute = {
      id: newId('dp'),
      object: 'dispute',
      // Not amount_captured: after a partial capture, the released rest already counts in amount_refunded.
      amount: charge.amount - charge.amount_refunded,
      balance_transactions: [],
      charge: charge.id,
      created,
      currency: charge.currency,
      enhanced_eligibility_types: [],
      evidence: emptyEvidence(),
      evidence_details: {
        due_by: created + EVIDENCE_WINDOW_DAYS * 86400,
        enhanced_eligibility: {},
        has_evidence: false,
        past_due: false,
        submission_count: 0,
        submission_method: null,
      } as unknown as Stripe.Dispute.EvidenceDetails,
      intended_submission_method: null,
      is_charge_refundable: kind.inquiry,
      livemode: false,
      metadata: {},
      network_reason_code: kind.reason === 'fraudulent' ? '10.4' : '13.1',
      payment_intent: charge.payment_intent,
      reason: kind.reason,
      status: kind.inquiry ? 'warning_needs_response' : 'needs_response',
    };
    this.disputes.set(dispute.id, dispute);
    charge.disputed = true;
    this.events.emit('charge.dispute.created', dispute, AUTOMATIC);
    if (!kind.inquiry) {
      this.moveFunds(dispute, -dispute.amount, 'Chargeback withdrawal');
      this.events.emit('charge.dispute.funds_withdrawn', dispute, AUTOMATIC);
    }
  }

  /** `POST /v1/disputes/:id`: evidence (staged or submitted) and metadata. */
  update(id: string, input: DisputeUpdate, request: RequestContext): Stripe.Dispute {
    const dispute = this.get(id);
    if (isClosed(dispute)) {
      throw new StripeApiError(400, 'invalid_request_error', `This dispute is already closed (status ${dispute.status}); it can no longer be updated.`, { param: 'dispute' });
    }
    const evidenceGiven = input.evidence !== undefined && Object.keys(input.evidence).length > 0;
    if (evidenceGiven && REVIEW_STATUSES.includes(dispute.status)) {
      throw new StripeApiError(400, 'invalid_request_error', 'Evidence for this dispute has already been submitted; it cannot be changed while the dispute is under review.', { param: 'evidence' });
    }
    const details = dispute.evidence_details as Stripe.Dispute.EvidenceDetails;
    const previous: Record<string, unknown> = {};
    if (input.metadata !== undefined) {
      previous.metadata = dispute.metadata;
      dispute.metadata = Object.keys(input.metadata).length === 0 ? {} : dropEmpty({ ...dispute.metadata, ...input.metadata });
    }
    if (evidenceGiven) {
      previous.evidence = { ...dispute.evidence };
      previous.evidence_details = { ...details };
      Object.assign(dispute.evidence, input.evidence);
      details.has_evidence = true;
    }
    // Evidence is submitted when given unless submit=false, or on its own with submit=true once staged.
    const submitting = details.has_evidence && (input.submit ?? evidenceGiven) && OPEN_STATUSES.includes(dispute.status);
    if (submitting) {
      previous.status = dispute.status;
      previous.evidence_details ??= { ...details };
      dispute.status = dispute.status === 'warning_needs_response' ? 'warning_under_review' : 'under_review';
      details.submission_count += 1;
      (details as { submission_method?: string | null }).submission_method = 'manual_api';
      const outcome = testOutcome(dispute.evidence);
      if (outcome) this.schedule(REVIEW_DELAY_MS, () => this.decide(dispute.id, outcome));
    }
    if (Object.keys(previous).length > 0) this.events.emit('charge.dispute.updated', dispute, request, previous);
    return dispute;
  }

  /** `POST /v1/disputes/:id/close`: the merchant accepts the dispute, so it is lost (an inquiry just closes). */
  close(id: string, request: RequestContext): Stripe.Dispute {
    const dispute = this.get(id);
    if (isClosed(dispute)) {
      throw new StripeApiError(400, 'invalid_request_error', `This dispute is already closed (status ${dispute.status}).`, { param: 'dispute' });
    }
    const previous = { status: dispute.status };
    dispute.status = dispute.status.startsWith('warning_') ? 'warning_closed' : 'lost';
    this.events.emit('charge.dispute.closed', dispute, request, previous);
    return dispute;
  }

  /** The bank's decision on submitted test evidence. Inquiries involve no funds, so they only close. */
  private decide(id: string, outcome: 'won' | 'lost'): void {
    const dispute = this.disputes.get(id);
    if (!dispute || !REVIEW_STATUSES.includes(dispute.status)) return;
    const previous = { status: dispute.status };
    if (dispute.status === 'warning_under_review') {
      dispute.status = 'warning_closed';
      this.events.emit('charge.dispute.closed', dispute, AUTOMATIC, previous);
      return;
    }
    dispute.status = outcome;
    if (outcome === 'won') this.moveFunds(dispute, dispute.amount, 'Chargeback reversal');
    this.events.emit('charge.dispute.closed', dispute, AUTOMATIC, previous);
    if (outcome === 'won') this.events.emit('charge.dispute.funds_reinstated', dispute, AUTOMATIC);
  }

  private moveFunds(dispute: Stripe.Dispute, amount: number, description: string): void {
    dispute.balance_transactions.push({
      id: newId('txn'),
      object: 'balance_transaction',
      amount,
      created: nowSeconds(),
      currency: dispute.currency,
      description: `${description} for ${dispute.charge as string}`,
      fee: 0,
      net: amount,
      reporting_category: amount < 0 ? 'dispute' : 'dispute_reversal',
      source: dispute.id,
      status: 'pending',
      type: 'adjustment',
    } as unknown as Stripe.BalanceTransaction);
  }
}

function isClosed(dispute: Stripe.Dispute): boolean {
  return dispute.status === 'won' || dispute.status === 'lost' || dispute.status === 'warning_closed';
}

function emptyEvidence(): Stripe.Dispute.Evidence {
  const evidence: Record<string, null> = {};
  for (const field of EVIDENCE_FIELDS) evidence[field] = null;
  return evidence as unknown as Stripe.Dispute.Evidence;
}

/** Stripe test mode: `losing_evidence` anywhere in the text loses, `winning_evidence` wins, anything else stays under review. */
function testOutcome(evidence: Stripe.Dispute.Evidence): 'won' | 'lost' | undefined {
  const texts = Object.values(evidence).filter((value): value is string => typeof value === 'string');
  if (texts.some((text) => text.includes(LOSING_EVIDENCE))) return 'lost';
  if (texts.some((text) => text.includes(WINNING_EVIDENCE))) return 'won';
  return undefined;
}

/** Metadata keys set to '' are removed, as Stripe does. */
function dropEmpty(metadata: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata).filter(([, value]) => value !== ''));
}
