import type Stripe from 'stripe';
import { AuthorizationWindows, setCaptureBefore } from './capture';
import { invalidParam, missingParam, noSuchObject, StripeApiError } from './errors';
import { DisputeDesk, DisputeKind } from './disputes';
import { AUTOMATIC, EventLog, RequestContext } from './events';
import { newId, nowSeconds } from './ids';
import { createPaymentMethod, fromTestToken, StoredPaymentMethod } from './payment-methods';

const CANCELABLE: readonly Stripe.PaymentIntent.Status[] = [
  'requires_payment_method',
  'requires_capture',
  'requires_confirmation',
  'requires_action',
  'processing',
];
const CONFIRMABLE: readonly Stripe.PaymentIntent.Status[] = ['requires_payment_method', 'requires_confirmation', 'requires_action'];
const UPDATABLE: readonly Stripe.PaymentIntent.Status[] = ['requires_payment_method', 'requires_confirmation', 'requires_action'];

/** Schedules an automatic change (a settlement, a dispute) after `ms` of mock time. */
export type Scheduler = (ms: number, action: () => void) => void;

export interface PaymentIntentInput {
  amount?: number;
  currency?: string;
  paymentMethod?: string;
  paymentMethodTypes?: string[];
  automaticPaymentMethods?: boolean;
  /** automatic_payment_methods[allow_redirects]; Stripe's default is `always`. */
  allowRedirects?: 'always' | 'never';
  captureMethod?: Stripe.PaymentIntent.CaptureMethod;
  confirm?: boolean;
  metadata?: Record<string, string>;
  description?: string;
  receiptEmail?: string;
  customer?: string;
  statementDescriptor?: string;
  setupFutureUsage?: Stripe.PaymentIntent.SetupFutureUsage;
}

/**
 * The PSP's objects and the rules that move them. Every change emits the
 * events Stripe emits for it, in Stripe's order, as snapshots.
 */
export class PspState {
  readonly paymentIntents = new Map<string, Stripe.PaymentIntent>();
  readonly charges = new Map<string, Stripe.Charge>();
  readonly refunds = new Map<string, Stripe.Refund>();
  readonly disputes = new Map<string, Stripe.Dispute>();
  readonly customers = new Map<string, Stripe.Customer>();
  readonly paymentMethods = new Map<string, StoredPaymentMethod>();

  /** Capture windows of manual-capture authorizations (set by MockPsp; without it, authorizations never lapse). */
  authorizationWindows?: AuthorizationWindows;
  readonly disputeDesk: DisputeDesk;
  /** Told when a processing payment settles or fails (Checkout follows it with its async_payment events). */
  afterSettlement?: (pi: Stripe.PaymentIntent) => void;

  constructor(readonly events: EventLog, private readonly schedule: Scheduler) {
    this.disputeDesk = new DisputeDesk(this.disputes, this.charges, events, schedule);
  }

  // ---------------------------------------------------------------- lookups

  paymentIntent(id: string, param = 'intent'): Stripe.PaymentIntent {
    const pi = this.paymentIntents.get(id);
    if (!pi) throw noSuchObject('payment_intent', id, param);
    return pi;
  }

  charge(id: string, param = 'charge'): Stripe.Charge {
    const charge = this.charges.get(id);
    if (!charge) throw noSuchObject('charge', id, param);
    return charge;
  }

  refund(id: string): Stripe.Refund {
    const refund = this.refunds.get(id);
    if (!refund) throw noSuchObject('refund', id);
    return refund;
  }

  dispute(id: string): Stripe.Dispute {
    return this.disputeDesk.get(id);
  }

  customer(id: string, param = 'customer'): Stripe.Customer {
    const customer = this.customers.get(id);
    if (!customer) throw noSuchObject('customer', id, param);
    return customer;
  }

  paymentMethod(id: string, param = 'payment_method'): StoredPaymentMethod {
    const stored = this.paymentMethods.get(id);
    if (!stored) throw noSuchObject('PaymentMethod', id, param);
    return stored;
  }

  /** A `pm_…` id we created, or a test token that makes a fresh one (as Stripe does). */
  private resolvePaymentMethod(idOrToken: string, param: string): StoredPaymentMethod {
    const existing = this.paymentMethods.get(idOrToken);
    if (existing) return existing;
    const fromToken = fromTestToken(idOrToken);
    if (!fromToken) throw noSuchObject('PaymentMethod', idOrToken, param);
    this.paymentMethods.set(fromToken.object.id, fromToken);
    return fromToken;
  }

  // --------------------------------------------------------- payment methods

  createPaymentMethod(
    type: string,
    details: Record<string, unknown> | undefined,
    billing: Partial<Stripe.PaymentMethod.BillingDetails> | undefined,
    metadata: Record<string, string> | undefined,
  ): Stripe.PaymentMethod {
    const stored = createPaymentMethod(type, details, billing);
    if (metadata) stored.object.metadata = metadata;
    this.paymentMethods.set(stored.object.id, stored);
    return stored.object;
  }

  attachPaymentMethod(id: string, customerId: string, request: RequestContext): Stripe.PaymentMethod {
    const stored = this.paymentMethod(id, 'payment_method');
    this.customer(customerId);
    stored.object.customer = customerId;
    this.events.emit('payment_method.attached', stored.object, request);
    return stored.object;
  }

  // --------------------------------------------------------------- customers

  createCustomer(input: { email?: string; name?: string; description?: string; metadata?: Record<string, string> }, request: RequestContext): Stripe.Customer {
    const customer: Stripe.Customer = {
      id: newId('cus', 14),
      object: 'customer',
      address: null,
      balance: 0,
      created: nowSeconds(),
      currency: null,
      default_source: null,
      delinquent: false,
      description: input.description ?? null,
      discount: null,
      email: input.email ?? null,
      invoice_prefix: newId('INV', 6).slice(4).toUpperCase(),
      invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null },
      livemode: false,
      metadata: input.metadata ?? {},
      name: input.name ?? null,
      next_invoice_sequence: 1,
      phone: null,
      preferred_locales: [],
      shipping: null,
      tax_exempt: 'none',
      test_clock: null,
    };
    this.customers.set(customer.id, customer);
    this.events.emit('customer.created', customer, request);
    return customer;
  }

  // --------------------------------------------------------- payment intents

  createPaymentIntent(input: PaymentIntentInput, request: RequestContext): Stripe.PaymentIntent {
    if (input.amount === undefined) throw missingParam('amount');
    if (input.currency === undefined) throw missingParam('currency');
    if (input.customer) this.customer(input.customer);
    const stored = input.paymentMethod ? this.resolvePaymentMethod(input.paymentMethod, 'payment_method') : undefined;
    const id = newId('pi');
    const automatic = input.automaticPaymentMethods ?? (input.paymentMethodTypes === undefined);
    const pi: Stripe.PaymentIntent = {
      id,
      object: 'payment_intent',
      allowed_payment_method_types: null,
      amount: input.amount,
      amount_capturable: 0,
      amount_details: { tip: {} },
      amount_received: 0,
      application: null,
      application_fee_amount: null,
      automatic_payment_methods: automatic ? { allow_redirects: input.allowRedirects ?? 'always', enabled: true } : null,
      canceled_at: null,
      cancellation_reason: null,
      capture_method: input.captureMethod ?? 'automatic_async',
      client_secret: `${id}_secret_${newId('x', 25).slice(2)}`,
      confirmation_method: 'automatic',
      created: nowSeconds(),
      currency: input.currency,
      customer: input.customer ?? null,
      customer_account: null,
      description: input.description ?? null,
      excluded_payment_method_types: null,
      last_payment_error: null,
      latest_charge: null,
      livemode: false,
      managed_payments: null,
      metadata: input.metadata ?? {},
      next_action: null,
      on_behalf_of: null,
      payment_method: stored?.object.id ?? null,
      payment_method_configuration_details: null,
      payment_method_options: {},
      payment_method_types: input.paymentMethodTypes ?? (stored ? [stored.object.type] : ['card']),
      payment_record: null,
      processing: null,
      receipt_email: input.receiptEmail ?? null,
      review: null,
      setup_future_usage: input.setupFutureUsage ?? null,
      shipping: null,
      source: null,
      statement_descriptor: input.statementDescriptor ?? null,
      statement_descriptor_suffix: null,
      status: stored ? 'requires_confirmation' : 'requires_payment_method',
      transfer_data: null,
      transfer_group: null,
    };
    this.paymentIntents.set(id, pi);
    this.events.emit('payment_intent.created', pi, request);
    if (input.confirm) this.confirmPaymentIntent(id, {}, request);
    return pi;
  }

  updatePaymentIntent(id: string, input: PaymentIntentInput): Stripe.PaymentIntent {
    const pi = this.paymentIntent(id);
    if (!UPDATABLE.includes(pi.status)) {
      throw unexpectedState(pi, `You cannot update this PaymentIntent because it has a status of ${pi.status}.`);
    }
    if (input.amount !== undefined) pi.amount = input.amount;
    if (input.currency !== undefined) pi.currency = input.currency;
    if (input.metadata !== undefined) pi.metadata = { ...pi.metadata, ...input.metadata };
    if (input.description !== undefined) pi.description = input.description;
    if (input.receiptEmail !== undefined) pi.receipt_email = input.receiptEmail;
    if (input.captureMethod !== undefined) pi.capture_method = input.captureMethod;
    if (input.paymentMethodTypes !== undefined) pi.payment_method_types = input.paymentMethodTypes;
    if (input.customer !== undefined) pi.customer = this.customer(input.customer).id;
    if (input.paymentMethod !== undefined) {
      pi.payment_method = this.resolvePaymentMethod(input.paymentMethod, 'payment_method').object.id;
      pi.status = 'requires_confirmation';
      pi.next_action = null;
    }
    return pi;
  }

  confirmPaymentIntent(id: string, input: { paymentMethod?: string; captureMethod?: Stripe.PaymentIntent.CaptureMethod }, request: RequestContext): Stripe.PaymentIntent {
    const pi = this.paymentIntent(id);
    if (!CONFIRMABLE.includes(pi.status)) {
      throw unexpectedState(
        pi,
        `You cannot confirm this PaymentIntent because it has a status of ${pi.status}. Only a PaymentIntent with one of the following statuses may be confirmed: ${CONFIRMABLE.join(', ')}.`,
      );
    }
    if (input.captureMethod) pi.capture_method = input.captureMethod;
    if (input.paymentMethod) pi.payment_method = this.resolvePaymentMethod(input.paymentMethod, 'payment_method').object.id;
    if (!pi.payment_method) {
      throw new StripeApiError(400, 'invalid_request_error', 'You cannot confirm this PaymentIntent because it\'s missing a payment method. To confirm the PaymentIntent with cus_ or pm_, specify a payment method attached to this customer along with the customer ID.', {
        code: 'payment_intent_unexpected_state',
        param: 'payment_method',
        payment_intent: pi,
      });
    }
    const stored = this.paymentMethod(pi.payment_method as string);
    pi.last_payment_error = null;
    switch (stored.behaviour) {
      case 'authenticate':
        pi.status = 'requires_action';
        pi.next_action = {
          type: 'use_stripe_sdk',
          use_stripe_sdk: { type: 'three_d_secure_redirect', stripe_js: `https://hooks.stripe.com/3d_secure_2/hosted?payment_intent=${pi.id}`, source: stored.object.id },
        };
        this.events.emit('payment_intent.requires_action', pi, request);
        return pi;
      case 'decline':
      case 'insufficient_funds':
        return this.fail(pi, stored, stored.behaviour === 'decline' ? 'generic_decline' : 'insufficient_funds', request);
      case 'delayed_success':
      case 'delayed_failure':
        return this.startProcessing(pi, stored, request);
      default:
        return this.succeed(pi, stored, request);
    }
  }

  /** The 3-D Secure challenge finished: the customer passed it or not (a test helper, as in Stripe's test mode). */
  completeAuthentication(id: string, outcome: 'succeed' | 'fail', request: RequestContext = AUTOMATIC): Stripe.PaymentIntent {
    const pi = this.paymentIntent(id);
    if (pi.status !== 'requires_action') {
      throw unexpectedState(pi, `This PaymentIntent has a status of ${pi.status}; only one that requires_action can be authenticated.`);
    }
    const stored = this.paymentMethod(pi.payment_method as string);
    pi.next_action = null;
    if (outcome === 'fail') {
      pi.status = 'requires_payment_method';
      pi.last_payment_error = {
        code: 'payment_intent_authentication_failure',
        doc_url: 'https://docs.stripe.com/error-codes/payment-intent-authentication-failure',
        message: 'We are unable to authenticate your payment method. Please choose a different payment method and try again.',
        payment_method: stored.object,
        type: 'invalid_request_error',
      };
      pi.payment_method = null;
      this.events.emit('payment_intent.payment_failed', pi, request);
      return pi;
    }
    return this.succeed(pi, stored, request);
  }

  private newCharge(pi: Stripe.PaymentIntent, stored: StoredPaymentMethod, status: Stripe.Charge.Status, captured: boolean): Stripe.Charge {
    const card = stored.object.card;
    const id = newId('ch');
    const charge: Stripe.Charge = {
      id,
      object: 'charge',
      amount: pi.amount,
      amount_captured: captured && status === 'succeeded' ? pi.amount : 0,
      amount_refunded: 0,
      application: null,
      application_fee: null,
      application_fee_amount: null,
      balance_transaction: status === 'succeeded' && captured ? newId('txn') : null,
      billing_details: stored.object.billing_details,
      calculated_statement_descriptor: 'SETTLE MOCK',
      captured,
      created: nowSeconds(),
      currency: pi.currency,
      customer: typeof pi.customer === 'string' ? pi.customer : null,
      description: pi.description,
      disputed: false,
      failure_balance_transaction: null,
      failure_code: null,
      failure_message: null,
      fraud_details: {},
      livemode: false,
      metadata: { ...pi.metadata },
      on_behalf_of: null,
      outcome: null,
      paid: status === 'succeeded',
      payment_intent: pi.id,
      payment_method: stored.object.id,
      payment_method_details: card
        ? ({ type: 'card', card: { brand: card.brand, last4: card.last4, exp_month: card.exp_month, exp_year: card.exp_year, funding: card.funding, country: card.country, network: card.brand } } as unknown as Stripe.Charge.PaymentMethodDetails)
        : ({ type: stored.object.type, [stored.object.type]: { last4: stored.object.sepa_debit?.last4 ?? null } } as unknown as Stripe.Charge.PaymentMethodDetails),
      receipt_email: pi.receipt_email,
      receipt_number: null,
      receipt_url: null,
      refunded: false,
      refunds: { object: 'list', data: [], has_more: false, url: `/v1/charges/${id}/refunds` },
      review: null,
      shipping: null,
      source: null,
      source_transfer: null,
      statement_descriptor: null,
      statement_descriptor_suffix: null,
      status,
      transfer_data: null,
      transfer_group: null,
    };
    this.charges.set(charge.id, charge);
    pi.latest_charge = charge.id;
    return charge;
  }

  private succeed(pi: Stripe.PaymentIntent, stored: StoredPaymentMethod, request: RequestContext): Stripe.PaymentIntent {
    pi.next_action = null;
    pi.last_payment_error = null;
    pi.payment_method = stored.object.id;
    // Manual capture: authorized now, captured later (capturePaymentIntent).
    const manual = pi.capture_method === 'manual';
    const charge = this.newCharge(pi, stored, 'succeeded', !manual);
    charge.outcome = approvedOutcome();
    if (manual) {
      pi.status = 'requires_capture';
      pi.amount_capturable = pi.amount;
      const captureBefore = this.authorizationWindows?.open(pi.id);
      if (captureBefore !== undefined) setCaptureBefore(charge, captureBefore);
    } else {
      pi.status = 'succeeded';
      pi.amount_received = pi.amount;
    }
    this.events.emit('charge.succeeded', charge, request);
    if (manual) {
      this.events.emit('payment_intent.amount_capturable_updated', pi, request);
      return pi;
    }
    this.events.emit('payment_intent.succeeded', pi, request);
    const dispute = DISPUTE_CARDS[stored.behaviour];
    if (dispute) this.disputeDesk.scheduleOpening(charge.id, dispute);
    return pi;
  }

  /** A declined card: the failed charge and its events, then the card error the API answers with. */
  private fail(pi: Stripe.PaymentIntent, stored: StoredPaymentMethod, declineCode: string, request: RequestContext): never {
    const charge = this.newCharge(pi, stored, 'failed', false);
    const message = declineCode === 'insufficient_funds' ? 'Your card has insufficient funds.' : 'Your card was declined.';
    charge.failure_code = 'card_declined';
    charge.failure_message = message;
    charge.outcome = {
      advice_code: null,
      network_advice_code: null,
      network_decline_code: null,
      network_status: 'declined_by_network',
      reason: declineCode,
      risk_level: 'normal',
      risk_score: 20,
      seller_message: 'The bank did not return any further details with this decline.',
      type: 'issuer_declined',
    };
    pi.status = 'requires_payment_method';
    pi.payment_method = null;
    pi.next_action = null;
    pi.last_payment_error = {
      charge: charge.id,
      code: 'card_declined',
      decline_code: declineCode,
      doc_url: 'https://docs.stripe.com/error-codes/card-declined',
      message,
      payment_method: stored.object,
      type: 'card_error',
    };
    this.events.emit('charge.failed', charge, request);
    this.events.emit('payment_intent.payment_failed', pi, request);
    throw new StripeApiError(402, 'card_error', message, {
      code: 'card_declined',
      decline_code: declineCode,
      charge: charge.id,
      doc_url: 'https://docs.stripe.com/error-codes/card-declined',
      payment_intent: JSON.parse(JSON.stringify(pi)),
      payment_method: stored.object,
      request_log_url: null,
    });
  }

  /** Bank debits: processing now, settled (or failed) later, as SEPA does. */
  private startProcessing(pi: Stripe.PaymentIntent, stored: StoredPaymentMethod, request: RequestContext): Stripe.PaymentIntent {
    const charge = this.newCharge(pi, stored, 'pending', true);
    charge.amount_captured = pi.amount;
    pi.status = 'processing';
    pi.payment_method = stored.object.id;
    pi.processing = null;
    this.events.emit('charge.pending', charge, request);
    this.events.emit('payment_intent.processing', pi, request);
    this.schedule(3000, () => this.settleProcessing(pi.id, charge.id, stored));
    return pi;
  }

  private settleProcessing(piId: string, chargeId: string, stored: StoredPaymentMethod): void {
    const pi = this.paymentIntents.get(piId);
    const charge = this.charges.get(chargeId);
    if (!pi || !charge || pi.status !== 'processing') return;
    if (stored.behaviour === 'delayed_failure') {
      charge.status = 'failed';
      charge.failure_code = 'insufficient_funds';
      charge.failure_message = 'The customer\'s account has insufficient funds to cover this payment.';
      pi.status = 'requires_payment_method';
      pi.payment_method = null;
      pi.last_payment_error = { charge: charge.id, code: 'insufficient_funds', message: charge.failure_message, payment_method: stored.object, type: 'card_error' } as Stripe.PaymentIntent.LastPaymentError;
      this.events.emit('charge.failed', charge, AUTOMATIC);
      this.events.emit('payment_intent.payment_failed', pi, AUTOMATIC);
      this.afterSettlement?.(pi);
      return;
    }
    charge.status = 'succeeded';
    charge.paid = true;
    charge.balance_transaction = newId('txn');
    pi.status = 'succeeded';
    pi.amount_received = pi.amount;
    this.events.emit('charge.succeeded', charge, AUTOMATIC);
    this.events.emit('payment_intent.succeeded', pi, AUTOMATIC);
    this.afterSettlement?.(pi);
  }

  capturePaymentIntent(id: string, amountToCapture: number | undefined, request: RequestContext): Stripe.PaymentIntent {
    const pi = this.paymentIntent(id);
    if (pi.status !== 'requires_capture') {
      throw unexpectedState(pi, `This PaymentIntent could not be captured because it has a status of ${pi.status}. Only a PaymentIntent with one of the following statuses may be captured: requires_capture.`);
    }
    const amount = amountToCapture ?? pi.amount_capturable;
    if (amount > pi.amount_capturable) {
      throw invalidParam('amount_to_capture', `The amount to capture (${amount}) is greater than the amount capturable (${pi.amount_capturable}).`, 'amount_too_large');
    }
    const charge = this.charge(pi.latest_charge as string);
    this.authorizationWindows?.close(pi.id);
    charge.captured = true;
    charge.amount_captured = amount;
    charge.amount_refunded = charge.amount - amount;
    charge.balance_transaction = newId('txn');
    pi.status = 'succeeded';
    pi.amount_received = amount;
    pi.amount_capturable = 0;
    this.events.emit('charge.captured', charge, request);
    this.events.emit('payment_intent.succeeded', pi, request);
    return pi;
  }

  cancelPaymentIntent(id: string, reason: Stripe.PaymentIntent.CancellationReason | undefined, request: RequestContext): Stripe.PaymentIntent {
    const pi = this.paymentIntent(id);
    if (!CANCELABLE.includes(pi.status)) {
      throw unexpectedState(
        pi,
        `You cannot cancel this PaymentIntent because it has a status of ${pi.status}. Only a PaymentIntent with one of the following statuses may be canceled: ${CANCELABLE.join(', ')}.`,
      );
    }
    const wasAuthorized = pi.status === 'requires_capture';
    this.authorizationWindows?.close(pi.id);
    pi.status = 'canceled';
    pi.canceled_at = nowSeconds();
    pi.cancellation_reason = reason ?? null;
    pi.next_action = null;
    pi.amount_capturable = 0;
    if (wasAuthorized && pi.latest_charge) {
      // Canceling an authorization releases it: Stripe reports that as a full refund of the uncaptured charge.
      const charge = this.charge(pi.latest_charge as string);
      charge.amount_refunded = charge.amount;
      charge.refunded = true;
      this.events.emit('charge.refunded', charge, request);
    }
    this.events.emit('payment_intent.canceled', pi, request);
    return pi;
  }

  // ---------------------------------------------------------------- charges

  /** The legacy Charges API (still used by some CLI fixtures): a card token, captured now or later. */
  createCharge(input: { amount: number; currency: string; source: string; capture: boolean; description?: string; metadata?: Record<string, string> }, request: RequestContext): Stripe.Charge {
    const stored = fromTestToken(input.source);
    if (!stored) throw noSuchObject('source', input.source, 'source');
    this.paymentMethods.set(stored.object.id, stored);
    const pi = this.createPaymentIntent(
      { amount: input.amount, currency: input.currency, paymentMethod: stored.object.id, captureMethod: input.capture ? 'automatic' : 'manual', description: input.description, metadata: input.metadata, paymentMethodTypes: ['card'] },
      request,
    );
    this.confirmPaymentIntent(pi.id, {}, request);
    return this.charge(pi.latest_charge as string);
  }

  captureCharge(id: string, amount: number | undefined, request: RequestContext): Stripe.Charge {
    const charge = this.charge(id);
    if (charge.captured) {
      throw new StripeApiError(400, 'invalid_request_error', `Charge ${id} has already been captured.`, { code: 'charge_already_captured' });
    }
    this.capturePaymentIntent(charge.payment_intent as string, amount, request);
    return charge;
  }

  // ---------------------------------------------------------------- refunds

  createRefund(
    input: { paymentIntent?: string; charge?: string; amount?: number; reason?: Stripe.Refund.Reason; metadata?: Record<string, string> },
    request: RequestContext,
  ): Stripe.Refund {
    let charge: Stripe.Charge;
    if (input.charge) {
      charge = this.charge(input.charge, 'charge');
    } else if (input.paymentIntent) {
      const pi = this.paymentIntent(input.paymentIntent, 'payment_intent');
      if (pi.status !== 'succeeded' || !pi.latest_charge) {
        throw new StripeApiError(400, 'invalid_request_error', `This PaymentIntent (${pi.id}) does not have a successful charge to refund.`, {
          code: 'charge_not_refundable',
          param: 'payment_intent',
        });
      }
      charge = this.charge(pi.latest_charge as string);
    } else {
      throw new StripeApiError(400, 'invalid_request_error', 'One of the following params should be provided for this request: payment_intent or charge.', {
        code: 'parameter_missing',
        param: 'payment_intent',
      });
    }
    if (charge.status !== 'succeeded' || !charge.captured) {
      throw new StripeApiError(400, 'invalid_request_error', `Charge ${charge.id} has not been captured or did not succeed, so it cannot be refunded.`, { code: 'charge_not_refundable' });
    }
    if (charge.disputed) {
      throw new StripeApiError(400, 'invalid_request_error', `Charge ${charge.id} has been charged back; it cannot be refunded.`, { code: 'charge_disputed' });
    }
    // Not amount_captured: after a partial capture, the released rest already counts in amount_refunded.
    const remaining = charge.amount - charge.amount_refunded;
    if (remaining <= 0) {
      throw new StripeApiError(400, 'invalid_request_error', `Charge ${charge.id} has already been refunded.`, { code: 'charge_already_refunded' });
    }
    const amount = input.amount ?? remaining;
    if (amount > remaining) {
      throw invalidParam('amount', `Refund amount (${formatMoney(amount, charge.currency)}) is greater than unrefunded amount on charge (${formatMoney(remaining, charge.currency)})`, 'amount_too_large');
    }
    const stored = this.paymentMethods.get(charge.payment_method as string);
    const isBankDebit = stored?.object.type === 'sepa_debit';
    const refund: Stripe.Refund = {
      id: newId('re'),
      object: 'refund',
      amount,
      balance_transaction: newId('txn'),
      charge: charge.id,
      created: nowSeconds(),
      currency: charge.currency,
      customer: null,
      customer_account: null,
      destination_details: { type: 'card', card: { reference_status: 'pending', reference_type: 'acquirer_reference_number', type: 'refund' } } as Stripe.Refund.DestinationDetails,
      metadata: input.metadata ?? {},
      payment_intent: charge.payment_intent,
      payment_method: charge.payment_method,
      reason: input.reason ?? null,
      receipt_number: null,
      source_transfer_reversal: null,
      status: isBankDebit ? 'pending' : 'succeeded',
      transfer_reversal: null,
    };
    this.refunds.set(refund.id, refund);
    charge.amount_refunded += amount;
    charge.refunded = charge.amount_refunded >= charge.amount;
    const list = charge.refunds ?? { object: 'list', data: [], has_more: false, url: `/v1/charges/${charge.id}/refunds` };
    list.data = [refund, ...list.data];
    charge.refunds = list;
    this.events.emit('charge.refunded', charge, request);
    this.events.emit('refund.created', refund, request);
    if (isBankDebit) this.schedule(3000, () => this.settleRefund(refund.id));
    if (stored?.behaviour === 'refund_fail') this.schedule(REFUND_FAILURE_DELAY_MS, () => this.failRefund(refund.id));
    return refund;
  }

  /** `POST /v1/refunds/:id`: only metadata can change; Stripe reports it as an update of the refund. */
  updateRefund(id: string, metadata: Record<string, string> | undefined, request: RequestContext): Stripe.Refund {
    const refund = this.refund(id);
    if (metadata === undefined) return refund;
    const previous = { metadata: refund.metadata };
    refund.metadata = Object.keys(metadata).length === 0 ? {} : Object.fromEntries(Object.entries({ ...refund.metadata, ...metadata }).filter(([, v]) => v !== ''));
    this.events.emit('refund.updated', refund, request, previous);
    this.events.emit('charge.refund.updated', refund, request, previous);
    return refund;
  }

  /**
   * `pm_card_refundFail`: the card refund looked done, then the card network
   * refused it (the card was closed), so the money stays with the merchant and
   * the charge counts it as unrefunded again.
   */
  private failRefund(id: string): void {
    const refund = this.refunds.get(id);
    const charge = refund ? this.charges.get(refund.charge as string) : undefined;
    if (!refund || !charge || refund.status !== 'succeeded') return;
    const previous = { status: refund.status, failure_reason: null, failure_balance_transaction: null };
    refund.status = 'failed';
    refund.failure_reason = 'expired_or_canceled_card';
    refund.failure_balance_transaction = newId('txn');
    charge.amount_refunded -= refund.amount;
    charge.refunded = charge.amount_refunded >= charge.amount;
    this.events.emit('refund.updated', refund, AUTOMATIC, previous);
    this.events.emit('charge.refund.updated', refund, AUTOMATIC, previous);
    // Stripe added refund.failed with API version 2024-10-28.acacia; the mock renders the SDK's version, which is newer.
    this.events.emit('refund.failed', refund, AUTOMATIC, previous);
  }

  private settleRefund(id: string): void {
    const refund = this.refunds.get(id);
    if (!refund || refund.status !== 'pending') return;
    refund.status = 'succeeded';
    this.events.emit('refund.updated', refund, AUTOMATIC, { status: 'pending' });
    this.events.emit('charge.refund.updated', refund, AUTOMATIC, { status: 'pending' });
  }
}

/** Mock milliseconds (scaled by MOCK_PSP_TIME_SCALE) before a `pm_card_refundFail` refund turns failed. */
const REFUND_FAILURE_DELAY_MS = 3000;

/** Test cards that open a dispute after the payment, and what kind. */
const DISPUTE_CARDS: Partial<Record<StoredPaymentMethod['behaviour'], DisputeKind>> = {
  dispute: { inquiry: false, reason: 'fraudulent' },
  dispute_not_received: { inquiry: false, reason: 'product_not_received' },
  inquiry: { inquiry: true, reason: 'fraudulent' },
};

function unexpectedState(pi: Stripe.PaymentIntent, message: string): StripeApiError {
  return new StripeApiError(400, 'invalid_request_error', message, {
    code: 'payment_intent_unexpected_state',
    doc_url: 'https://docs.stripe.com/error-codes/payment-intent-unexpected-state',
    payment_intent: JSON.parse(JSON.stringify(pi)),
  });
}

function approvedOutcome(): Stripe.Charge.Outcome {
  return {
    advice_code: null,
    network_advice_code: null,
    network_decline_code: null,
    network_status: 'approved_by_network',
    reason: null,
    risk_level: 'normal',
    risk_score: 12,
    seller_message: 'Payment complete.',
    type: 'authorized',
  };
}

function formatMoney(amount: number, currency: string): string {
  return `${(amount / 100).toFixed(2)} ${currency}`;
}

