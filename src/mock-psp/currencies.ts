import { invalidParam, StripeApiError } from './errors';

/**
 * Stripe's charge currencies (docs.stripe.com/currencies, "Supported presentment
 * currencies"), in the order Stripe lists them in its "Invalid currency" error.
 * The mock's own table: it shares nothing with the backend but the wire.
 */
export const SUPPORTED_CURRENCIES: readonly string[] = [
  'usd', 'aed', 'afn', 'all', 'amd', 'ang', 'aoa', 'ars', 'aud', 'awg', 'azn', 'bam', 'bbd', 'bdt', 'bgn', 'bif',
  'bmd', 'bnd', 'bob', 'brl', 'bsd', 'bwp', 'byn', 'bzd', 'cad', 'cdf', 'chf', 'clp', 'cny', 'cop', 'crc', 'cve',
  'czk', 'djf', 'dkk', 'dop', 'dzd', 'egp', 'etb', 'eur', 'fjd', 'fkp', 'gbp', 'gel', 'gip', 'gmd', 'gnf', 'gtq',
  'gyd', 'hkd', 'hnl', 'htg', 'huf', 'idr', 'ils', 'inr', 'isk', 'jmd', 'jpy', 'kes', 'kgs', 'khr', 'kmf', 'krw',
  'kyd', 'kzt', 'lak', 'lbp', 'lkr', 'lrd', 'lsl', 'mad', 'mdl', 'mga', 'mkd', 'mmk', 'mnt', 'mop', 'mur', 'mvr',
  'mwk', 'mxn', 'myr', 'mzn', 'nad', 'ngn', 'nio', 'nok', 'npr', 'nzd', 'pab', 'pen', 'pgk', 'php', 'pkr', 'pln',
  'pyg', 'qar', 'ron', 'rsd', 'rub', 'rwf', 'sar', 'sbd', 'scr', 'sek', 'sgd', 'shp', 'sle', 'sos', 'srd', 'std',
  'szl', 'thb', 'tjs', 'top', 'try', 'ttd', 'twd', 'tzs', 'uah', 'ugx', 'uyu', 'uzs', 'vnd', 'vuv', 'wst', 'xaf',
  'xcd', 'xcg', 'xof', 'xpf', 'yer', 'zar', 'zmw',
];
const SUPPORTED = new Set(SUPPORTED_CURRENCIES);

/** Amounts in these are whole units: `amount=500` with `jpy` is ¥500 (docs.stripe.com/currencies#zero-decimal). */
export const ZERO_DECIMAL_CURRENCIES: ReadonlySet<string> = new Set([
  'bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg', 'rwf', 'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf',
]);

/**
 * Stripe's minimum charge per currency, in the currency's minor unit
 * (docs.stripe.com/currencies#minimum-and-maximum-charge-amounts). Stripe holds
 * other currencies to "the equivalent of 0.50 USD" after conversion; the mock
 * has no exchange rates, so for those it only asks for a positive amount.
 */
export const MINIMUM_CHARGE: Readonly<Record<string, number>> = {
  usd: 50, aed: 200, aud: 50, bgn: 100, brl: 50, cad: 50, chf: 50, czk: 1500, dkk: 250, eur: 50, gbp: 30,
  hkd: 400, huf: 17500, inr: 50, jpy: 50, mxn: 1000, myr: 200, nok: 300, nzd: 50, pln: 200, ron: 200, sek: 300,
  sgd: 50, thb: 1000,
};

/** Stripe's `amount` takes at most eight digits, whatever the currency. */
export const MAXIMUM_CHARGE = 99_999_999;

/**
 * ISK became zero-decimal, but Stripe's API still takes it in two-decimal form
 * with the decimals always 00 (docs.stripe.com/currencies, special cases).
 */
const WHOLE_UNITS_IN_TWO_DECIMALS: ReadonlySet<string> = new Set(['isk']);

/** A supported currency code, lower-cased; otherwise Stripe's 400 on `currency`. */
export function checkCurrency(value: string): string {
  const code = value.toLowerCase();
  if (!SUPPORTED.has(code)) {
    throw validation(
      new StripeApiError(400, 'invalid_request_error', `Invalid currency: ${value}. Stripe currently supports these currencies: ${SUPPORTED_CURRENCIES.join(', ')}`, {
        param: 'currency',
      }),
    );
  }
  return code;
}

/** An amount to charge within Stripe's limits for `currency`; otherwise `amount_too_small` / `amount_too_large` on `param`. */
export function checkChargeAmount(amount: number, currency: string, param = 'amount'): void {
  const minimum = MINIMUM_CHARGE[currency] ?? 1;
  if (amount < minimum) {
    throw validation(invalidParam(param, `Amount must be at least ${formatAmount(minimum, currency)} ${currency}`, 'amount_too_small'));
  }
  if (amount > MAXIMUM_CHARGE) {
    throw validation(invalidParam(param, `Amount must be no more than ${formatAmount(MAXIMUM_CHARGE, currency)} ${currency}`, 'amount_too_large'));
  }
  if (WHOLE_UNITS_IN_TWO_DECIMALS.has(currency) && amount % 100 !== 0) {
    throw validation(invalidParam(param, `Amounts in ${currency} are whole units written with two decimals of 00: ${amount} is not a multiple of 100.`, 'invalid_charge_amount'));
  }
}

/** These refusals are input validation: an Idempotency-Key sent with them stays free for a corrected request. */
function validation(err: StripeApiError): StripeApiError {
  err.rejectedBeforeExecution = true;
  return err;
}

/** `1234` usd -> `12.34`; `1234` jpy -> `1,234` (as Stripe's messages write amounts). */
export function formatAmount(amount: number, currency: string): string {
  const decimals = ZERO_DECIMAL_CURRENCIES.has(currency) ? 0 : 2;
  return (amount / 10 ** decimals).toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}
