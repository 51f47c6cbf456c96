import type Stripe from 'stripe';
import { LIST_PARAMS, paginate, route, Route } from './api-routes';
import { Catalog } from './catalog';
import { CheckoutDesk, LineItemInput, SESSION_PAYMENT_METHOD_TYPES, SessionInput } from './checkout-sessions';
import { checkCurrency } from './currencies';
import { invalidParam, missingParam } from './errors';
import { Params } from './params';

const SESSION_CREATE_PARAMS = [
  'mode', 'line_items', 'success_url', 'cancel_url', 'client_reference_id', 'customer_email', 'customer', 'metadata',
  'payment_intent_data', 'expires_at', 'payment_method_types', 'locale', 'submit_type', 'billing_address_collection',
  'ui_mode', 'customer_creation', 'allow_promotion_codes', 'phone_number_collection',
];
const PAYMENT_INTENT_DATA_PARAMS = [
  'metadata', 'capture_method', 'description', 'setup_future_usage', 'shipping', 'receipt_email', 'statement_descriptor',
  'statement_descriptor_suffix', 'transfer_group', 'on_behalf_of', 'application_fee_amount', 'transfer_data',
];
const LINE_ITEM_PARAMS = ['price', 'price_data', 'quantity', 'adjustable_quantity', 'tax_rates', 'dynamic_tax_rates'];
const PRICE_DATA_PARAMS = ['currency', 'unit_amount', 'unit_amount_decimal', 'product', 'product_data', 'tax_behavior'];

/** Items of a form array (`a[0][x]=…` parses to an array, or to an index-keyed object past qs's array limit). */
function items(p: Params, key: string): unknown[] | undefined {
  const value = p.raw[key];
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value;
  if (typeof value === 'object' && value !== null) return Object.values(value);
  throw invalidParam(key, `Invalid array: ${key} must be a list`);
}

function url(p: Params, key: string): string | undefined {
  const value = p.string(key);
  if (value === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw invalidParam(key, 'Not a valid URL', 'url_invalid');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw invalidParam(key, 'Not a valid URL', 'url_invalid');
  return value;
}

function lineItemsInput(p: Params): LineItemInput[] {
  const raw = items(p, 'line_items');
  if (!raw || raw.length === 0) throw missingParam('line_items');
  return raw.map((value, index) => {
    if (typeof value !== 'object' || value === null) throw invalidParam(`line_items[${index}]`, `Invalid object: line_items[${index}] must be a hash`);
    const item = new Params(value as Record<string, unknown>, LINE_ITEM_PARAMS, `line_items[${index}]`);
    const quantity = item.int('quantity', { required: true, min: 1 }) as number;
    const price = item.string('price');
    const data = item.object('price_data', PRICE_DATA_PARAMS);
    if (price && data) throw invalidParam(`line_items[${index}][price_data]`, 'You may only specify one of these parameters: price, price_data.');
    if (!data) return { price, quantity };
    const currency = checkCurrency(data.requiredString('currency'));
    const unitAmount = data.int('unit_amount', { required: true, min: 0 }) as number;
    const product = data.string('product');
    const productData = data.object('product_data', ['name', 'description', 'images', 'metadata', 'tax_code', 'unit_label']);
    if (!product && !productData) throw missingParam(`line_items[${index}][price_data][product_data]`);
    const productName = productData?.requiredString('name');
    return { priceData: { currency, unitAmount, product, productName }, quantity };
  });
}

function sessionInput(p: Params): SessionInput {
  const mode = p.oneOf('mode', ['payment', 'setup', 'subscription'] as const);
  if (!mode) throw missingParam('mode');
  if (mode !== 'payment') throw invalidParam('mode', `The mock PSP supports Checkout Sessions in payment mode only, not ${mode}.`);
  const piData = p.object('payment_intent_data', PAYMENT_INTENT_DATA_PARAMS);
  const types = p.stringArray('payment_method_types');
  for (const type of types ?? []) {
    if (!(SESSION_PAYMENT_METHOD_TYPES as readonly string[]).includes(type)) {
      throw invalidParam('payment_method_types', `Invalid payment_method_types: the mock PSP offers ${SESSION_PAYMENT_METHOD_TYPES.join(', ')}, not ${type}.`);
    }
  }
  return {
    lineItems: lineItemsInput(p),
    successUrl: url(p, 'success_url'),
    cancelUrl: url(p, 'cancel_url'),
    clientReferenceId: p.string('client_reference_id'),
    customerEmail: p.string('customer_email'),
    customer: p.string('customer'),
    metadata: p.metadata(),
    expiresAt: p.int('expires_at'),
    paymentMethodTypes: types && types.length > 0 ? types : undefined,
    paymentIntentData: {
      metadata: piData?.metadata(),
      captureMethod: piData?.oneOf('capture_method', ['automatic', 'automatic_async', 'manual'] as const),
      description: piData?.string('description'),
      setupFutureUsage: piData?.oneOf('setup_future_usage', ['off_session', 'on_session'] as const),
      receiptEmail: piData?.string('receipt_email'),
      statementDescriptor: piData?.string('statement_descriptor'),
    },
  };
}

/**
 * Products, Prices and Checkout Sessions, plus the payment page endpoints
 * Stripe's own hosted page calls (`/v1/payment_pages/...`), which the Stripe
 * CLI's checkout.session.* fixtures use to pay a session without a browser.
 */
export function checkoutRoutes(desk: CheckoutDesk, catalog: Catalog, customerExists: (id: string) => void): Route[] {
  return [
    route('POST', '/v1/products', ({ params, request }) => {
      const p = new Params(params, ['name', 'description', 'metadata', 'active', 'images', 'url', 'tax_code', 'unit_label', 'statement_descriptor', 'shippable']);
      return catalog.createProduct({ name: p.requiredString('name'), description: p.string('description'), metadata: p.metadata() }, request);
    }),
    route('GET', '/v1/products/:id', ({ params, path }) => {
      new Params(params, []);
      return catalog.product(path.id, 'id');
    }),
    route('POST', '/v1/prices', ({ params, request }) => {
      const p = new Params(params, ['product', 'product_data', 'unit_amount', 'currency', 'metadata', 'nickname', 'active', 'lookup_key', 'tax_behavior', 'unit_amount_decimal']);
      const currency = checkCurrency(p.requiredString('currency'));
      const unitAmount = p.int('unit_amount', { required: true, min: 0 }) as number;
      let product = p.string('product');
      const productData = p.object('product_data', ['name', 'metadata', 'active', 'statement_descriptor', 'tax_code', 'unit_label']);
      if (!product && productData) product = catalog.createProduct({ name: productData.requiredString('name'), metadata: productData.metadata() }, request).id;
      if (!product) throw missingParam('product');
      return catalog.createPrice({ product, currency, unitAmount, nickname: p.string('nickname'), metadata: p.metadata() }, request);
    }),
    route('GET', '/v1/prices/:id', ({ params, path }) => {
      new Params(params, []);
      return catalog.price(path.id, 'id');
    }),

    route('POST', '/v1/checkout/sessions', ({ params }) => {
      const input = sessionInput(new Params(params, SESSION_CREATE_PARAMS));
      if (input.customer) customerExists(input.customer);
      return desk.create(input);
    }),
    route('GET', '/v1/checkout/sessions', ({ params }) => {
      const p = new Params(params, [...LIST_PARAMS, 'payment_intent', 'status', 'customer']);
      const pi = p.string('payment_intent');
      const status = p.oneOf('status', ['open', 'complete', 'expired'] as const);
      const customer = p.string('customer');
      const all = [...desk.sessions.values()]
        .map((s) => s.session)
        .reverse()
        .filter((s) => (!pi || s.payment_intent === pi) && (!status || s.status === status) && (!customer || s.customer === customer));
      return paginate(all, p, '/v1/checkout/sessions');
    }),
    route('GET', '/v1/checkout/sessions/:id', ({ params, path }) => {
      new Params(params, []);
      return desk.get(path.id, 'session').session;
    }),
    route('POST', '/v1/checkout/sessions/:id/expire', ({ params, path, request }) => {
      new Params(params, []);
      return desk.expire(path.id, request);
    }),
    route('GET', '/v1/checkout/sessions/:id/line_items', ({ params, path }) => {
      const p = new Params(params, ['limit', 'starting_after', 'ending_before']);
      return paginate(desk.lineItems(path.id), p, `/v1/checkout/sessions/${path.id}/line_items`);
    }),

    route('GET', '/v1/payment_pages/:id', ({ params, path }) => {
      new Params(params, []);
      return paymentPage(desk.get(path.id, 'id').session, desk.lineItems(path.id));
    }),
    route('POST', '/v1/payment_pages/:id/confirm', ({ params, path, request }) => {
      const p = new Params(params, ['payment_method', 'expected_amount', 'expected_payment_method_type', 'email', 'tax_id_collection', 'consent', 'return_url']);
      const session = desk.confirmPaymentPage(path.id, p.requiredString('payment_method'), p.int('expected_amount'), request);
      return paymentPage(session, desk.lineItems(path.id));
    }),
  ];
}

/** The part of Stripe's payment page object a client reads: the session's state and what it costs. */
function paymentPage(session: Stripe.Checkout.Session, lineItems: Stripe.LineItem[]): Record<string, unknown> {
  return {
    object: 'checkout.payment_page',
    id: session.id,
    session_id: session.id,
    status: session.status,
    payment_status: session.payment_status,
    payment_intent: session.payment_intent,
    amount_total: session.amount_total,
    currency: session.currency,
    payment_method_types: session.payment_method_types,
    line_item_group: { line_items: lineItems, total: session.amount_total, currency: session.currency },
    success_url: session.success_url,
    cancel_url: session.cancel_url,
  };
}
