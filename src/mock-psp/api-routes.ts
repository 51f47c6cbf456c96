import type Stripe from 'stripe';
import { checkChargeAmount, checkCurrency, MAXIMUM_CHARGE } from './currencies';
import { EVIDENCE_FIELDS } from './disputes';
import { invalidParam, noSuchObject, StripeApiError } from './errors';
import { RequestContext } from './events';
import { Params } from './params';
import { PaymentIntentInput, PspState } from './psp-state';
import { WebhookDelivery } from './webhook-delivery';

type Raw = Record<string, unknown>;

export interface RouteContext {
  params: Raw;
  path: Record<string, string>;
  request: RequestContext;
}

export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  /** Stripe's path with `:id` placeholders; also the key of the per-route request counts. */
  pattern: string;
  regex: RegExp;
  handle(ctx: RouteContext): unknown;
}

const PI_CREATE_PARAMS = [
  'amount', 'currency', 'payment_method', 'payment_method_types', 'automatic_payment_methods', 'capture_method', 'confirm',
  'metadata', 'description', 'receipt_email', 'customer', 'statement_descriptor', 'statement_descriptor_suffix',
  'setup_future_usage', 'return_url', 'off_session', 'confirmation_method', 'payment_method_options', 'shipping',
  'mandate_data', 'payment_method_data', 'error_on_requires_action', 'use_stripe_sdk', 'transfer_group', 'on_behalf_of',
  'application_fee_amount', 'radar_options', 'excluded_payment_method_types', 'payment_method_configuration', 'customer_account',
];
const PI_UPDATE_PARAMS = [
  'amount', 'currency', 'payment_method', 'payment_method_types', 'capture_method', 'metadata', 'description', 'receipt_email',
  'customer', 'statement_descriptor', 'statement_descriptor_suffix', 'setup_future_usage', 'shipping', 'payment_method_options',
  'payment_method_data', 'transfer_group', 'application_fee_amount', 'excluded_payment_method_types',
];
const PI_CONFIRM_PARAMS = [
  'payment_method', 'return_url', 'off_session', 'capture_method', 'mandate_data', 'payment_method_options', 'payment_method_data',
  'payment_method_types', 'receipt_email', 'setup_future_usage', 'shipping', 'error_on_requires_action', 'use_stripe_sdk', 'radar_options',
];
export const LIST_PARAMS = ['limit', 'starting_after', 'ending_before', 'created'];
const CREATED_FILTER = ['gt', 'gte', 'lt', 'lte'];

function currency(p: Params, required: boolean): string | undefined {
  const value = p.string('currency', required);
  if (value === undefined) return undefined;
  return checkCurrency(value);
}

/** A positive amount; `chargeRulesFollow` leaves the upper limit to checkChargeAmount, whose message names the currency. */
function amount(p: Params, key: string, required: boolean, chargeRulesFollow = false): number | undefined {
  const value = p.int(key, { required, min: 1 });
  if (value !== undefined && value > MAXIMUM_CHARGE && !chargeRulesFollow) {
    throw invalidParam(key, `Amount must be no more than ${MAXIMUM_CHARGE}`, 'amount_too_large');
  }
  return value;
}

/** A PaymentMethod given inline (`payment_method_data[type]=card&payment_method_data[card][token]=tok_visa`). */
function inlinePaymentMethod(state: PspState, p: Params): string | undefined {
  const data = p.object('payment_method_data', ['type', 'card', 'sepa_debit', 'billing_details', 'metadata']);
  if (!data) return p.string('payment_method');
  const type = data.requiredString('type');
  const details = data.raw[type] as Raw | undefined;
  return state.createPaymentMethod(type, details, data.raw.billing_details as Partial<Stripe.PaymentMethod.BillingDetails>, data.metadata()).id;
}

function paymentIntentInput(state: PspState, p: Params, creating: boolean): PaymentIntentInput {
  const apm = p.object('automatic_payment_methods', ['enabled', 'allow_redirects']);
  return {
    amount: amount(p, 'amount', creating, true),
    currency: currency(p, creating),
    paymentMethod: inlinePaymentMethod(state, p),
    paymentMethodTypes: p.stringArray('payment_method_types'),
    automaticPaymentMethods: apm ? apm.bool('enabled') ?? false : undefined,
    allowRedirects: apm ? apm.oneOf('allow_redirects', ['always', 'never'] as const) : undefined,
    captureMethod: p.oneOf('capture_method', ['automatic', 'automatic_async', 'manual'] as const),
    confirm: creating ? p.bool('confirm') : undefined,
    metadata: p.metadata(),
    description: p.string('description'),
    receiptEmail: p.string('receipt_email'),
    customer: p.string('customer'),
    statementDescriptor: p.string('statement_descriptor'),
    setupFutureUsage: p.oneOf('setup_future_usage', ['off_session', 'on_session'] as const),
  };
}

/** Stripe's list envelope with cursor pagination over `items` (newest first) and the `created[…]` filter. */
export function paginate<T extends { id: string; created?: number }>(items: readonly T[], p: Params, url: string): Stripe.ApiList<T> {
  const limit = p.int('limit', { min: 1, max: 100 }) ?? 10;
  let list = items;
  const created = p.raw.created;
  if (created !== undefined) {
    if (typeof created === 'string') {
      const exact = p.int('created') as number;
      list = list.filter((item) => item.created === exact);
    } else {
      const range = p.object('created', CREATED_FILTER) as Params;
      const gt = range.int('gt');
      const gte = range.int('gte');
      const lt = range.int('lt');
      const lte = range.int('lte');
      list = list.filter(({ created: at = 0 }) => (gt === undefined || at > gt) && (gte === undefined || at >= gte) && (lt === undefined || at < lt) && (lte === undefined || at <= lte));
    }
  }
  const startingAfter = p.string('starting_after');
  const endingBefore = p.string('ending_before');
  if (startingAfter && endingBefore) {
    throw invalidParam('ending_before', 'You may only specify one of these parameters: starting_after, ending_before.');
  }
  let page: readonly T[];
  let hasMore: boolean;
  if (endingBefore) {
    const index = list.findIndex((item) => item.id === endingBefore);
    if (index < 0) throw noSuchObject('object', endingBefore, 'ending_before');
    const before = list.slice(0, index);
    page = before.slice(Math.max(0, before.length - limit));
    hasMore = before.length > limit;
  } else {
    let start = 0;
    if (startingAfter) {
      const index = list.findIndex((item) => item.id === startingAfter);
      if (index < 0) throw noSuchObject('object', startingAfter, 'starting_after');
      start = index + 1;
    }
    page = list.slice(start, start + limit);
    hasMore = start + limit < list.length;
  }
  return { object: 'list', data: [...page], has_more: hasMore, url };
}

function newestFirst<T>(items: Iterable<T>): T[] {
  return [...items].reverse();
}

/** One route: Stripe's path pattern with `:name` placeholders, matched as named groups. */
export function route(method: Route['method'], pattern: string, handle: Route['handle']): Route {
  const regex = new RegExp(`^${pattern.replace(/:(\w+)/g, '(?<$1>[^/]+)')}$`);
  return { method, pattern, regex, handle };
}

/** Every Stripe endpoint the mock serves. */
export function apiRoutes(state: PspState, delivery: Pick<WebhookDelivery, 'state'>): Route[] {
  const routes: Route[] = [];
  const add = (method: Route['method'], pattern: string, handle: Route['handle']) => {
    routes.push(route(method, pattern, handle));
  };

  // PaymentIntents
  add('POST', '/v1/payment_intents', ({ params, request }) => {
    const p = new Params(params, PI_CREATE_PARAMS);
    const input = paymentIntentInput(state, p, true);
    checkChargeAmount(input.amount as number, input.currency as string);
    return state.createPaymentIntent(input, request);
  });
  add('GET', '/v1/payment_intents', ({ params }) => {
    const p = new Params(params, [...LIST_PARAMS, 'customer']);
    const customer = p.string('customer');
    const all = newestFirst(state.paymentIntents.values()).filter((pi) => !customer || pi.customer === customer);
    return paginate(all, p, '/v1/payment_intents');
  });
  add('GET', '/v1/payment_intents/:id', ({ params, path }) => {
    new Params(params, ['client_secret']);
    return state.paymentIntent(path.id);
  });
  add('POST', '/v1/payment_intents/:id', ({ params, path }) => {
    const p = new Params(params, PI_UPDATE_PARAMS);
    const input = paymentIntentInput(state, p, false);
    if (input.amount !== undefined || input.currency !== undefined) {
      const current = state.paymentIntent(path.id);
      checkChargeAmount(input.amount ?? current.amount, input.currency ?? current.currency);
    }
    return state.updatePaymentIntent(path.id, input);
  });
  add('POST', '/v1/payment_intents/:id/confirm', ({ params, path, request }) => {
    const p = new Params(params, PI_CONFIRM_PARAMS);
    const captureMethod = p.oneOf('capture_method', ['automatic', 'automatic_async', 'manual'] as const);
    return state.confirmPaymentIntent(path.id, { paymentMethod: inlinePaymentMethod(state, p), captureMethod }, request);
  });
  add('POST', '/v1/payment_intents/:id/cancel', ({ params, path, request }) => {
    const p = new Params(params, ['cancellation_reason']);
    const reason = p.oneOf('cancellation_reason', ['duplicate', 'fraudulent', 'requested_by_customer', 'abandoned'] as const);
    return state.cancelPaymentIntent(path.id, reason, request);
  });
  add('POST', '/v1/payment_intents/:id/capture', ({ params, path, request }) => {
    const p = new Params(params, ['amount_to_capture', 'metadata', 'statement_descriptor', 'statement_descriptor_suffix', 'final_capture']);
    return state.capturePaymentIntent(path.id, amount(p, 'amount_to_capture', false), request);
  });
  // A test helper in the spirit of Stripe's /v1/test_helpers: finish a 3-D Secure challenge.
  add('POST', '/v1/test_helpers/payment_intents/:id/authenticate', ({ params, path, request }) => {
    const p = new Params(params, ['outcome']);
    return state.completeAuthentication(path.id, p.oneOf('outcome', ['succeed', 'fail'] as const) ?? 'succeed', request);
  });

  // Charges
  add('POST', '/v1/charges', ({ params, request }) => {
    const p = new Params(params, ['amount', 'currency', 'source', 'capture', 'description', 'metadata', 'receipt_email', 'statement_descriptor']);
    const chargeAmount = amount(p, 'amount', true, true) as number;
    const chargeCurrency = currency(p, true) as string;
    checkChargeAmount(chargeAmount, chargeCurrency);
    return state.createCharge(
      {
        amount: chargeAmount,
        currency: chargeCurrency,
        source: p.requiredString('source'),
        capture: p.bool('capture') ?? true,
        description: p.string('description'),
        metadata: p.metadata(),
      },
      request,
    );
  });
  add('GET', '/v1/charges', ({ params }) => {
    const p = new Params(params, [...LIST_PARAMS, 'payment_intent', 'customer']);
    const pi = p.string('payment_intent');
    const customer = p.string('customer');
    return paginate(newestFirst(state.charges.values()).filter((c) => (!pi || c.payment_intent === pi) && (!customer || c.customer === customer)), p, '/v1/charges');
  });
  add('GET', '/v1/charges/:id', ({ params, path }) => {
    new Params(params, []);
    return state.charge(path.id, 'id');
  });
  add('POST', '/v1/charges/:id/capture', ({ params, path, request }) => {
    const p = new Params(params, ['amount', 'receipt_email', 'statement_descriptor', 'metadata']);
    return state.captureCharge(path.id, amount(p, 'amount', false), request);
  });

  // Refunds
  add('POST', '/v1/refunds', ({ params, request }) => {
    const p = new Params(params, ['payment_intent', 'charge', 'amount', 'reason', 'metadata', 'instructions_email', 'refund_application_fee', 'reverse_transfer', 'origin']);
    return state.createRefund(
      {
        paymentIntent: p.string('payment_intent'),
        charge: p.string('charge'),
        amount: amount(p, 'amount', false),
        reason: p.oneOf('reason', ['duplicate', 'fraudulent', 'requested_by_customer'] as const),
        metadata: p.metadata(),
      },
      request,
    );
  });
  add('GET', '/v1/refunds', ({ params }) => {
    const p = new Params(params, [...LIST_PARAMS, 'payment_intent', 'charge']);
    const pi = p.string('payment_intent');
    const charge = p.string('charge');
    const all = newestFirst(state.refunds.values()).filter((r) => (!pi || r.payment_intent === pi) && (!charge || r.charge === charge));
    return paginate(all, p, '/v1/refunds');
  });
  add('GET', '/v1/refunds/:id', ({ params, path }) => {
    new Params(params, []);
    return state.refund(path.id);
  });
  add('POST', '/v1/refunds/:id', ({ params, path, request }) => {
    const p = new Params(params, ['metadata']);
    return state.updateRefund(path.id, p.metadata(), request);
  });

  // PaymentMethods and Customers (what checkout clients and the CLI's fixtures create first)
  add('POST', '/v1/payment_methods', ({ params }) => {
    const p = new Params(params, ['type', 'card', 'sepa_debit', 'billing_details', 'metadata', 'allow_redisplay']);
    const type = p.requiredString('type');
    return state.createPaymentMethod(type, p.raw[type] as Raw | undefined, p.raw.billing_details as Partial<Stripe.PaymentMethod.BillingDetails>, p.metadata());
  });
  add('GET', '/v1/payment_methods/:id', ({ params, path }) => {
    new Params(params, []);
    return state.paymentMethod(path.id, 'id').object;
  });
  add('POST', '/v1/payment_methods/:id/attach', ({ params, path, request }) => {
    const p = new Params(params, ['customer']);
    return state.attachPaymentMethod(path.id, p.requiredString('customer'), request);
  });
  add('POST', '/v1/customers', ({ params, request }) => {
    const p = new Params(params, ['email', 'name', 'description', 'metadata', 'payment_method', 'phone', 'address', 'shipping', 'invoice_settings']);
    return state.createCustomer({ email: p.string('email'), name: p.string('name'), description: p.string('description'), metadata: p.metadata() }, request);
  });
  add('GET', '/v1/customers/:id', ({ params, path }) => {
    new Params(params, []);
    return state.customer(path.id, 'id');
  });

  // Disputes
  add('GET', '/v1/disputes', ({ params }) => {
    const p = new Params(params, [...LIST_PARAMS, 'charge', 'payment_intent']);
    const pi = p.string('payment_intent');
    const charge = p.string('charge');
    state.disputeDesk.openDue({ charge, paymentIntent: pi });
    return paginate(newestFirst(state.disputes.values()).filter((d) => (!pi || d.payment_intent === pi) && (!charge || d.charge === charge)), p, '/v1/disputes');
  });
  add('GET', '/v1/disputes/:id', ({ params, path }) => {
    new Params(params, []);
    return state.dispute(path.id);
  });
  add('POST', '/v1/disputes/:id', ({ params, path, request }) => {
    const p = new Params(params, ['evidence', 'submit', 'metadata']);
    const evidence = p.object('evidence', EVIDENCE_FIELDS);
    const given: Record<string, string> = {};
    for (const field of EVIDENCE_FIELDS) {
      const value = evidence?.string(field);
      if (value !== undefined) given[field] = value;
    }
    return state.disputeDesk.update(path.id, { evidence: evidence ? given : undefined, submit: p.bool('submit'), metadata: p.metadata() }, request);
  });
  add('POST', '/v1/disputes/:id/close', ({ params, path, request }) => {
    new Params(params, []);
    return state.disputeDesk.close(path.id, request);
  });

  // Events
  add('GET', '/v1/events', ({ params }) => {
    const p = new Params(params, [...LIST_PARAMS, 'type', 'types', 'delivery_success']);
    const type = p.string('type');
    const types = p.stringArray('types');
    if (type && types) throw invalidParam('types', 'You may only specify one of these parameters: type, types.');
    if (types && types.length > 20) throw invalidParam('types', 'You may pass at most 20 types.');
    const deliverySuccess = p.bool('delivery_success');
    const matchesType = (t: string) => {
      if (types) return types.includes(t);
      if (!type) return true;
      // Stripe accepts a trailing wildcard: `payment_intent.*`.
      return type.endsWith('.*') ? t.startsWith(type.slice(0, -1)) : t === type;
    };
    const matchesDelivery = (id: string) => {
      if (deliverySuccess === undefined) return true;
      const d = delivery.state(id);
      const ok = !d || d.delivered;
      return deliverySuccess ? ok : !ok;
    };
    const all = newestFirst(state.events.all()).filter((e) => matchesType(e.type) && matchesDelivery(e.id));
    return paginate(all, p, '/v1/events');
  });
  add('GET', '/v1/events/:id', ({ params, path }) => {
    new Params(params, []);
    const event = state.events.get(path.id);
    if (!event) throw noSuchObject('event', path.id);
    return event;
  });

  return routes;
}

/** Replaces expandable ids with their objects, as `expand[]=latest_charge` does (top-level fields only). */
export function expand(state: PspState, body: unknown, fields: string[]): unknown {
  if (fields.length === 0 || typeof body !== 'object' || body === null) return body;
  const copy = JSON.parse(JSON.stringify(body)) as Raw;
  const lookups: Record<string, (id: string) => unknown> = {
    latest_charge: (id) => state.charges.get(id),
    charge: (id) => state.charges.get(id),
    payment_intent: (id) => state.paymentIntents.get(id),
    payment_method: (id) => state.paymentMethods.get(id)?.object,
    customer: (id) => state.customers.get(id),
  };
  for (const field of fields) {
    const lookup = lookups[field];
    const value = copy[field];
    // A field the mock always renders whole (a charge's refunds list) is expanded already.
    if (value !== null && typeof value === 'object') continue;
    if (!lookup) throw new StripeApiError(400, 'invalid_request_error', `This property cannot be expanded (${field}).`, { param: 'expand' });
    if (typeof value === 'string') copy[field] = lookup(value) ?? value;
  }
  return copy;
}
