import type Stripe from 'stripe';
import { invalidParam, missingParam, StripeApiError } from './errors';
import { newId, nowSeconds } from './ids';

/** What confirming a PaymentIntent with this method does, following Stripe's test cards and tokens. */
export type Behaviour =
  | 'succeed'
  | 'decline'
  | 'insufficient_funds'
  | 'authenticate'
  | 'dispute'
  | 'dispute_not_received'
  | 'inquiry'
  | 'refund_fail'
  | 'delayed_success'
  | 'delayed_failure';

interface CardSpec {
  brand: string;
  last4: string;
  funding: 'credit' | 'debit';
  behaviour: Behaviour;
}

/** Stripe's documented test payment methods (pm_card_…) and tokens (tok_…), by what they do. */
const TEST_CARDS: Record<string, CardSpec> = {
  visa: { brand: 'visa', last4: '4242', funding: 'credit', behaviour: 'succeed' },
  visa_debit: { brand: 'visa', last4: '5556', funding: 'debit', behaviour: 'succeed' },
  mastercard: { brand: 'mastercard', last4: '4444', funding: 'credit', behaviour: 'succeed' },
  amex: { brand: 'amex', last4: '8431', funding: 'credit', behaviour: 'succeed' },
  chargeDeclined: { brand: 'visa', last4: '0002', funding: 'credit', behaviour: 'decline' },
  visa_chargeDeclined: { brand: 'visa', last4: '0341', funding: 'credit', behaviour: 'decline' },
  chargeDeclinedInsufficientFunds: { brand: 'visa', last4: '9995', funding: 'credit', behaviour: 'insufficient_funds' },
  authenticationRequired: { brand: 'visa', last4: '3184', funding: 'credit', behaviour: 'authenticate' },
  threeDSecure2Required: { brand: 'visa', last4: '3220', funding: 'credit', behaviour: 'authenticate' },
  authenticationRequiredOnSetup: { brand: 'visa', last4: '3155', funding: 'credit', behaviour: 'succeed' },
  createDispute: { brand: 'visa', last4: '0259', funding: 'credit', behaviour: 'dispute' },
  createDisputeInquiry: { brand: 'visa', last4: '1976', funding: 'credit', behaviour: 'inquiry' },
  createDisputeProductNotReceived: { brand: 'visa', last4: '2685', funding: 'credit', behaviour: 'dispute_not_received' },
  refundFail: { brand: 'visa', last4: '5126', funding: 'credit', behaviour: 'refund_fail' },
};

/** Test card numbers, for `card[number]`. */
const TEST_NUMBERS: Record<string, string> = {
  '4242424242424242': 'visa',
  '4000056655665556': 'visa_debit',
  '5555555555554444': 'mastercard',
  '378282246310005': 'amex',
  '4000000000000002': 'chargeDeclined',
  '4000000000009995': 'chargeDeclinedInsufficientFunds',
  '4000002760003184': 'authenticationRequired',
  '4000000000003220': 'threeDSecure2Required',
  '4000000000000259': 'createDispute',
  '4000000000001976': 'createDisputeInquiry',
  '4000000000002685': 'createDisputeProductNotReceived',
  '4000000000005126': 'refundFail',
};

/** SEPA test IBANs: the debit settles (or fails) a while after confirmation. */
const SEPA_IBANS: Record<string, Behaviour> = {
  DE89370400440532013000: 'delayed_success',
  AT611904300234573201: 'delayed_success',
  AT321904300235473204: 'delayed_success',
  DE62370400440532013001: 'delayed_failure',
  AT861904300235473202: 'delayed_failure',
  // The pair the Stripe CLI's checkout.session.async_payment_* fixtures use.
  IT40S0542811101000000123456: 'delayed_success',
  IT60X0542811101000000123456: 'delayed_failure',
};

export interface StoredPaymentMethod {
  object: Stripe.PaymentMethod;
  behaviour: Behaviour;
}

function cardMethod(spec: CardSpec, billing?: Partial<Stripe.PaymentMethod.BillingDetails>): Stripe.PaymentMethod {
  return {
    id: newId('pm'),
    object: 'payment_method',
    allow_redisplay: 'unspecified',
    billing_details: { address: null, email: null, name: null, phone: null, tax_id: null, ...billing },
    card: {
      brand: spec.brand,
      checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: 'pass' },
      country: 'US',
      display_brand: spec.brand,
      exp_month: 12,
      exp_year: new Date().getUTCFullYear() + 3,
      fingerprint: `fp${spec.last4}${spec.brand}`.slice(0, 16),
      funding: spec.funding,
      generated_from: null,
      last4: spec.last4,
      networks: { available: [spec.brand], preferred: null },
      regulated_status: 'unregulated',
      three_d_secure_usage: { supported: true },
      wallet: null,
    },
    created: nowSeconds(),
    customer: null,
    customer_account: null,
    livemode: false,
    metadata: {},
    type: 'card',
  };
}

function sepaMethod(iban: string, billing?: Partial<Stripe.PaymentMethod.BillingDetails>): Stripe.PaymentMethod {
  return {
    id: newId('pm'),
    object: 'payment_method',
    billing_details: { address: null, email: null, name: null, phone: null, tax_id: null, ...billing },
    sepa_debit: {
      bank_code: iban.slice(4, 12),
      branch_code: '',
      country: iban.slice(0, 2),
      fingerprint: `fp${iban.slice(-6)}`,
      generated_from: { charge: null, setup_attempt: null },
      last4: iban.slice(-4),
    },
    created: nowSeconds(),
    customer: null,
    customer_account: null,
    livemode: false,
    metadata: {},
    type: 'sepa_debit',
  };
}

/**
 * The hosted page's bank redirect (iDEAL-like): the customer authorizes or
 * fails the test payment on the bank's page, and either way the outcome
 * arrives later, as for a delayed-notification method.
 */
export function bankRedirectMethod(outcome: 'authorize' | 'fail'): StoredPaymentMethod {
  const object = {
    id: newId('pm'),
    object: 'payment_method',
    billing_details: { address: null, email: null, name: null, phone: null, tax_id: null },
    ideal: { bank: 'ing', bic: 'INGBNL2A' },
    created: nowSeconds(),
    customer: null,
    customer_account: null,
    livemode: false,
    metadata: {},
    type: 'ideal',
  } as unknown as Stripe.PaymentMethod;
  return { object, behaviour: outcome === 'authorize' ? 'delayed_success' : 'delayed_failure' };
}

/** `pm_card_visa`, `tok_visa`, `pm_card_chargeDeclined` …: a fresh PaymentMethod as Stripe makes one per use. */
export function fromTestToken(token: string): StoredPaymentMethod | undefined {
  const match = /^(?:pm_card_|tok_)(.+)$/.exec(token);
  if (!match) return undefined;
  const spec = TEST_CARDS[match[1]];
  if (!spec) return undefined;
  return { object: cardMethod(spec), behaviour: spec.behaviour };
}

/** POST /v1/payment_methods for cards (by number or token) and SEPA Direct Debit (by IBAN). */
export function createPaymentMethod(
  type: string,
  details: Record<string, unknown> | undefined,
  billing: Partial<Stripe.PaymentMethod.BillingDetails> | undefined,
): StoredPaymentMethod {
  if (type === 'card') {
    const token = typeof details?.token === 'string' ? details.token : undefined;
    if (token) {
      const stored = fromTestToken(token);
      if (!stored) throw invalidParam('card[token]', `No such token: '${token}'`, 'resource_missing');
      if (billing) stored.object.billing_details = { ...stored.object.billing_details, ...billing };
      return stored;
    }
    const number = typeof details?.number === 'string' ? details.number.replace(/\s/g, '') : undefined;
    if (!number) throw missingParam('card[number]');
    const name = TEST_NUMBERS[number];
    if (!name) {
      throw new StripeApiError(402, 'card_error', 'Your card number is incorrect.', { code: 'incorrect_number', param: 'card[number]' });
    }
    const spec = TEST_CARDS[name];
    return { object: cardMethod(spec, billing), behaviour: spec.behaviour };
  }
  if (type === 'sepa_debit') {
    const iban = typeof details?.iban === 'string' ? details.iban.replace(/\s/g, '').toUpperCase() : undefined;
    if (!iban) throw missingParam('sepa_debit[iban]');
    const behaviour = SEPA_IBANS[iban];
    if (!behaviour) throw invalidParam('sepa_debit[iban]', 'The IBAN you provided is not a Stripe test IBAN.', 'invalid_bank_account_iban');
    return { object: sepaMethod(iban, billing), behaviour };
  }
  throw invalidParam('type', `Invalid type: the mock PSP supports card and sepa_debit, not ${type}`);
}
