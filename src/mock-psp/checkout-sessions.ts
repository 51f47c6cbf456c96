import type Stripe from 'stripe';
import { Catalog } from './catalog';
import { checkChargeAmount } from './currencies';
import { StripeApiError, invalidParam, noSuchObject } from './errors';
import { AUTOMATIC, EventLog, RequestContext } from './events';
import { newId, nowSeconds } from './ids';
import { bankRedirectMethod } from './payment-methods';
import { PspState } from './psp-state';

/** Stripe's bounds for `expires_at`: 30 minutes to 24 hours after the session is created. */
export const MIN_SESSION_LIFETIME_SECONDS = 30 * 60;
export const MAX_SESSION_LIFETIME_SECONDS = 24 * 60 * 60;

/** Payment method types a session may offer here; the hosted page shows `card` and `ideal` (as its bank redirect). */
export const SESSION_PAYMENT_METHOD_TYPES = ['card', 'ideal', 'sepa_debit'] as const;
const DEFAULT_PAYMENT_METHOD_TYPES = ['card', 'ideal'];

/** setTimeout fires at once for delays past 2^31-1 ms, so longer waits are chained. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface LineItemInput {
  price?: string;
  priceData?: { currency: string; unitAmount: number; productName?: string; product?: string };
  quantity: number;
}

export interface SessionInput {
  lineItems: LineItemInput[];
  successUrl?: string;
  cancelUrl?: string;
  clientReferenceId?: string;
  customerEmail?: string;
  customer?: string;
  metadata?: Record<string, string>;
  expiresAt?: number;
  paymentMethodTypes?: string[];
  paymentIntentData: {
    metadata?: Record<string, string>;
    captureMethod?: Stripe.PaymentIntent.CaptureMethod;
    description?: string;
    setupFutureUsage?: Stripe.PaymentIntent.SetupFutureUsage;
    receiptEmail?: string;
    statementDescriptor?: string;
  };
}

interface StoredSession {
  session: Stripe.Checkout.Session;
  lineItems: Stripe.LineItem[];
  paymentIntentData: SessionInput['paymentIntentData'];
}

/** What became of one attempt on the hosted page. */
export type AttemptOutcome =
  | { kind: 'complete' }
  | { kind: 'requires_action' }
  | { kind: 'failed'; code: string; message: string }
  | { kind: 'not_open'; status: Stripe.Checkout.Session.Status | null };

/**
 * Checkout Sessions (mode=payment): the session, its line items, the
 * PaymentIntent it creates when the customer first submits a payment, its
 * expiry, and the checkout.session.* events in Stripe's order.
 */
export class CheckoutDesk {
  readonly sessions = new Map<string, StoredSession>();
  /** Prices (with their products) made from inline price_data, which nothing else refers to. */
  private readonly inline = new Set<string>();
  private readonly expiryTimers = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly state: PspState,
    private readonly catalog: Catalog,
    private readonly events: EventLog,
    private readonly options: { timeScale: number; baseUrl: () => string },
  ) {
    state.afterSettlement = (pi) => this.settled(pi);
  }

  get(id: string, param = 'session'): StoredSession {
    const stored = this.sessions.get(id);
    if (!stored) throw noSuchObject('checkout.session', id, param);
    return stored;
  }

  /** The session whose PaymentIntent this is, if any. */
  forPaymentIntent(paymentIntentId: string): StoredSession | undefined {
    for (const stored of this.sessions.values()) {
      if (stored.session.payment_intent === paymentIntentId) return stored;
    }
    return undefined;
  }

  create(input: SessionInput): Stripe.Checkout.Session {
    const now = nowSeconds();
    if (input.expiresAt !== undefined) {
      if (input.expiresAt < now + MIN_SESSION_LIFETIME_SECONDS) {
        throw invalidParam('expires_at', 'The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.');
      }
      if (input.expiresAt > now + MAX_SESSION_LIFETIME_SECONDS) {
        throw invalidParam('expires_at', 'The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.');
      }
    }
    const lineItems = input.lineItems.map((item, index) => this.lineItem(item, index));
    const currency = lineItems[0].currency;
    if (lineItems.some((item) => item.currency !== currency)) {
      throw invalidParam('line_items', 'All line items must use the same currency.');
    }
    const total = lineItems.reduce((sum, item) => sum + item.amount_total, 0);
    checkChargeAmount(total, currency, 'line_items');
    const id = `cs_test_${newId('x', 58).slice(2)}`;
    const session = {
      id,
      object: 'checkout.session',
      adaptive_pricing: null,
      after_expiration: null,
      allow_promotion_codes: null,
      amount_subtotal: total,
      amount_total: total,
      automatic_tax: { enabled: false, liability: null, provider: null, status: null },
      billing_address_collection: null,
      cancel_url: input.cancelUrl ?? null,
      client_reference_id: input.clientReferenceId ?? null,
      client_secret: null,
      collected_information: null,
      consent: null,
      consent_collection: null,
      created: now,
      currency,
      currency_conversion: null,
      custom_fields: [],
      custom_text: { after_submit: null, shipping_address: null, submit: null, terms_of_service_acceptance: null },
      customer: input.customer ?? null,
      customer_account: null,
      customer_creation: input.customer ? null : 'if_required',
      customer_details: input.customerEmail ? { address: null, email: input.customerEmail, name: null, phone: null, tax_exempt: 'none', tax_ids: null } : null,
      customer_email: input.customerEmail ?? null,
      discounts: [],
      expires_at: input.expiresAt ?? now + MAX_SESSION_LIFETIME_SECONDS,
      integration_identifier: null,
      invoice: null,
      invoice_creation: { enabled: false, invoice_data: { account_tax_ids: null, custom_fields: null, description: null, footer: null, issuer: null, metadata: {}, rendering_options: null } },
      livemode: false,
      locale: null,
      managed_payments: null,
      metadata: input.metadata ?? {},
      mode: 'payment',
      origin_context: null,
      payment_intent: null,
      payment_link: null,
      payment_method_collection: 'if_required',
      payment_method_configuration_details: null,
      payment_method_options: {},
      payment_method_types: input.paymentMethodTypes ?? DEFAULT_PAYMENT_METHOD_TYPES,
      payment_status: 'unpaid',
      permissions: null,
      phone_number_collection: { enabled: false },
      recovered_from: null,
      saved_payment_method_options: null,
      setup_intent: null,
      shipping_address_collection: null,
      shipping_cost: null,
      shipping_options: [],
      status: 'open',
      submit_type: null,
      subscription: null,
      success_url: input.successUrl ?? null,
      total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
      ui_mode: 'hosted',
      url: `${this.options.baseUrl()}/c/pay/${id}`,
      wallet_options: null,
    } as unknown as Stripe.Checkout.Session;
    this.sessions.set(id, { session, lineItems, paymentIntentData: input.paymentIntentData });
    this.scheduleExpiry(id, session.expires_at);
    return session;
  }

  private lineItem(input: LineItemInput, index: number): Stripe.LineItem {
    let price: Stripe.Price;
    if (input.price) {
      price = this.catalog.price(input.price, `line_items[${index}][price]`);
    } else if (input.priceData) {
      const data = input.priceData;
      const product = data.product
        ? this.catalog.product(data.product, `line_items[${index}][price_data][product]`)
        : this.catalog.createProduct({ name: data.productName as string }, null);
      price = this.catalog.createPrice({ product: product.id, currency: data.currency, unitAmount: data.unitAmount }, null);
      if (!data.product) this.inline.add(price.id);
    } else {
      throw invalidParam(`line_items[${index}]`, `You must specify either \`price\` or \`price_data\` in line_items[${index}].`);
    }
    const product = this.catalog.products.get(price.product as string);
    const amount = (price.unit_amount ?? 0) * input.quantity;
    return {
      id: newId('li'),
      object: 'item',
      adjustable_quantity: null,
      amount_discount: 0,
      amount_subtotal: amount,
      amount_tax: 0,
      amount_total: amount,
      currency: price.currency,
      description: product?.name ?? null,
      price,
      quantity: input.quantity,
    } as unknown as Stripe.LineItem;
  }

  lineItems(id: string): Stripe.LineItem[] {
    return this.get(id).lineItems;
  }

  /** `POST /v1/checkout/sessions/:id/expire`, and the end of its lifetime: open sessions only. */
  expire(id: string, request: RequestContext): Stripe.Checkout.Session {
    const { session } = this.get(id);
    if (session.status !== 'open') {
      throw new StripeApiError(400, 'invalid_request_error', `Only Checkout Sessions with a status in ["open"] can be expired. This session has a status of ${session.status}.`);
    }
    this.clearExpiry(id);
    // A PaymentIntent left behind by a declined or unauthenticated attempt is canceled with the session.
    const piId = session.payment_intent as string | null;
    const pi = piId ? this.state.paymentIntents.get(piId) : undefined;
    if (pi && ['requires_payment_method', 'requires_confirmation', 'requires_action'].includes(pi.status)) {
      this.state.cancelPaymentIntent(pi.id, 'abandoned', request);
    }
    session.status = 'expired';
    session.url = null;
    this.events.emit('checkout.session.expired', session, request);
    return session;
  }

  // ------------------------------------------------------------ payments

  /** A card number typed on the hosted page (spaces allowed). */
  payWithCard(id: string, cardNumber: string): AttemptOutcome {
    const open = this.openOrOutcome(id);
    if (open) return open;
    let pmId: string;
    try {
      pmId = this.state.createPaymentMethod('card', { number: cardNumber }, undefined, undefined).id;
    } catch (err) {
      if (err instanceof StripeApiError) return { kind: 'failed', code: String(err.extra.code ?? 'incorrect_number'), message: err.message };
      throw err;
    }
    return this.attempt(id, pmId, AUTOMATIC);
  }

  /** The 3-D Secure step of the hosted page: the customer completed or failed it. */
  authenticate(id: string, outcome: 'succeed' | 'fail'): AttemptOutcome {
    const open = this.openOrOutcome(id);
    if (open) return open;
    const { session } = this.get(id);
    const pi = session.payment_intent ? this.state.paymentIntents.get(session.payment_intent as string) : undefined;
    if (!pi || pi.status !== 'requires_action') return { kind: 'failed', code: 'no_authentication', message: 'There is no payment waiting for authentication. Please enter your card again.' };
    this.state.completeAuthentication(pi.id, outcome, AUTOMATIC);
    return this.afterConfirm(id, AUTOMATIC);
  }

  /** The bank's test page: authorized or failed, the payment is processing and settles later either way. */
  payWithBankRedirect(id: string, outcome: 'authorize' | 'fail'): AttemptOutcome {
    const open = this.openOrOutcome(id);
    if (open) return open;
    const stored = bankRedirectMethod(outcome);
    this.state.paymentMethods.set(stored.object.id, stored);
    return this.attempt(id, stored.object.id, AUTOMATIC);
  }

  /**
   * `POST /v1/payment_pages/:id/confirm`, what Stripe's own page (and the CLI's
   * fixtures) call: a PaymentMethod id and the amount the page showed.
   */
  confirmPaymentPage(id: string, paymentMethod: string, expectedAmount: number | undefined, request: RequestContext): Stripe.Checkout.Session {
    const { session } = this.get(id);
    if (session.status !== 'open') {
      throw new StripeApiError(400, 'invalid_request_error', `This Checkout Session is no longer active (status ${session.status}).`);
    }
    if (expectedAmount !== undefined && expectedAmount !== session.amount_total) {
      throw invalidParam('expected_amount', `The expected amount (${expectedAmount}) does not match the Checkout Session's total (${session.amount_total}).`);
    }
    this.state.paymentMethod(paymentMethod, 'payment_method');
    const pi = this.paymentIntentFor(id, request);
    // A decline throws the card error, as Stripe's API answers it.
    this.state.confirmPaymentIntent(pi.id, { paymentMethod }, request);
    this.afterConfirm(id, request);
    return session;
  }

  private openOrOutcome(id: string): AttemptOutcome | undefined {
    const { session } = this.get(id);
    return session.status === 'open' ? undefined : { kind: 'not_open', status: session.status };
  }

  private attempt(id: string, paymentMethod: string, request: RequestContext): AttemptOutcome {
    const pi = this.paymentIntentFor(id, request);
    try {
      this.state.confirmPaymentIntent(pi.id, { paymentMethod }, request);
    } catch (err) {
      if (err instanceof StripeApiError && err.type === 'card_error') return { kind: 'failed', code: String(err.extra.code ?? 'card_declined'), message: err.message };
      throw err;
    }
    return this.afterConfirm(id, request);
  }

  /** The session's PaymentIntent, created (with payment_intent_data) at the first attempt, as Stripe does. */
  private paymentIntentFor(id: string, request: RequestContext): Stripe.PaymentIntent {
    const { session, paymentIntentData } = this.get(id);
    if (session.payment_intent) return this.state.paymentIntent(session.payment_intent as string);
    const pi = this.state.createPaymentIntent(
      {
        amount: session.amount_total as number,
        currency: session.currency as string,
        captureMethod: paymentIntentData.captureMethod ?? 'automatic_async',
        metadata: paymentIntentData.metadata,
        description: paymentIntentData.description,
        receiptEmail: paymentIntentData.receiptEmail,
        statementDescriptor: paymentIntentData.statementDescriptor,
        setupFutureUsage: paymentIntentData.setupFutureUsage,
        customer: typeof session.customer === 'string' ? session.customer : undefined,
        paymentMethodTypes: session.payment_method_types,
      },
      request,
    );
    session.payment_intent = pi.id;
    return pi;
  }

  /** Where a confirmation left the PaymentIntent decides the session's fate. */
  private afterConfirm(id: string, request: RequestContext): AttemptOutcome {
    const { session } = this.get(id);
    const pi = this.state.paymentIntent(session.payment_intent as string);
    switch (pi.status) {
      case 'succeeded':
      case 'requires_capture':
        this.complete(session, 'paid', request);
        return { kind: 'complete' };
      case 'processing':
        // Delayed notification: the customer is done, the money is not there yet.
        this.complete(session, 'unpaid', request);
        return { kind: 'complete' };
      case 'requires_action':
        return { kind: 'requires_action' };
      default: {
        const error = pi.last_payment_error;
        return { kind: 'failed', code: error?.code ?? 'payment_failed', message: error?.message ?? 'The payment failed.' };
      }
    }
  }

  private complete(session: Stripe.Checkout.Session, paymentStatus: 'paid' | 'unpaid', request: RequestContext): void {
    this.clearExpiry(session.id);
    session.status = 'complete';
    session.payment_status = paymentStatus;
    session.url = null;
    this.events.emit('checkout.session.completed', session, request);
  }

  /** A delayed-notification payment settled: Checkout reports it after the PaymentIntent's own events. */
  private settled(pi: Stripe.PaymentIntent): void {
    const stored = this.forPaymentIntent(pi.id);
    if (!stored || stored.session.status !== 'complete' || stored.session.payment_status !== 'unpaid') return;
    if (pi.status === 'succeeded') {
      stored.session.payment_status = 'paid';
      this.events.emit('checkout.session.async_payment_succeeded', stored.session, AUTOMATIC);
    } else {
      this.events.emit('checkout.session.async_payment_failed', stored.session, AUTOMATIC);
    }
  }

  /**
   * Forgets sessions created before `cutoff` (unix seconds) that are finished
   * (expired, or complete and settled), with the Products and Prices their
   * inline price_data made, as Retention forgets old PaymentIntents.
   */
  prune(cutoff: number): number {
    let removed = 0;
    for (const [id, stored] of this.sessions) {
      const { session } = stored;
      if (session.created >= cutoff) break;
      const unsettled = session.status === 'open' || (session.status === 'complete' && session.payment_status === 'unpaid' && this.isProcessing(session));
      if (unsettled) continue;
      this.sessions.delete(id);
      for (const item of stored.lineItems) {
        if (item.price && this.inline.has(item.price.id)) {
          this.catalog.prices.delete(item.price.id);
          this.catalog.products.delete(item.price.product as string);
          this.inline.delete(item.price.id);
        }
      }
      removed += 1;
    }
    return removed;
  }

  private isProcessing(session: Stripe.Checkout.Session): boolean {
    const pi = typeof session.payment_intent === 'string' ? this.state.paymentIntents.get(session.payment_intent) : undefined;
    return pi?.status === 'processing';
  }

  // -------------------------------------------------------------- expiry

  /** Open sessions waiting for their expires_at. */
  get pendingExpiries(): number {
    return this.expiryTimers.size;
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.expiryTimers.values()) clearTimeout(timer);
    this.expiryTimers.clear();
  }

  /**
   * Waits until expires_at, the wait scaled like the mock's other waits. Kept
   * apart from the mock's scheduled changes so `idle()` does not wait a day for
   * it; the timers never keep the process alive.
   */
  private scheduleExpiry(id: string, expiresAt: number): void {
    if (this.stopped) return;
    const deadline = Date.now() + Math.max(0, expiresAt * 1000 - Date.now()) * this.options.timeScale;
    const wait = () => {
      const timer = setTimeout(() => {
        this.expiryTimers.delete(id);
        if (this.stopped) return;
        if (Date.now() < deadline) return wait();
        const stored = this.sessions.get(id);
        if (stored?.session.status === 'open') this.expire(id, AUTOMATIC);
      }, Math.min(Math.max(0, deadline - Date.now()), MAX_TIMER_MS));
      timer.unref();
      this.expiryTimers.set(id, timer);
    };
    wait();
  }

  private clearExpiry(id: string): void {
    const timer = this.expiryTimers.get(id);
    if (timer) clearTimeout(timer);
    this.expiryTimers.delete(id);
  }
}
