/**
 * Stripe's presentment currencies and charge limits, so an order Stripe would
 * refuse is a 400 here rather than a 502 from the PSP. Facts from Stripe's
 * "Supported currencies" page (docs.stripe.com/currencies); pure data, no I/O.
 */

/** Every currency Stripe accepts for card payments (lower-case ISO 4217, as Stripe writes them). */
export const STRIPE_CURRENCIES: ReadonlySet<string> = new Set([
  'usd', 'aed', 'afn', 'all', 'amd', 'ang', 'aoa', 'ars', 'aud', 'awg', 'azn', 'bam', 'bbd', 'bdt', 'bgn', 'bhd',
  'bif', 'bmd', 'bnd', 'bob', 'brl', 'bsd', 'bwp', 'byn', 'bzd', 'cad', 'cdf', 'chf', 'clp', 'cny', 'cop', 'crc',
  'cve', 'czk', 'djf', 'dkk', 'dop', 'dzd', 'egp', 'etb', 'eur', 'fjd', 'fkp', 'gbp', 'gel', 'gip', 'gmd', 'gnf',
  'gtq', 'gyd', 'hkd', 'hnl', 'htg', 'huf', 'idr', 'ils', 'inr', 'isk', 'jmd', 'jod', 'jpy', 'kes', 'kgs', 'khr',
  'kmf', 'krw', 'kwd', 'kyd', 'kzt', 'lak', 'lbp', 'lkr', 'lrd', 'lsl', 'mad', 'mdl', 'mga', 'mkd', 'mmk', 'mnt',
  'mop', 'mur', 'mvr', 'mwk', 'mxn', 'myr', 'mzn', 'nad', 'ngn', 'nio', 'nok', 'npr', 'nzd', 'omr', 'pab', 'pen',
  'pgk', 'php', 'pkr', 'pln', 'pyg', 'qar', 'ron', 'rsd', 'rub', 'rwf', 'sar', 'sbd', 'scr', 'sek', 'sgd', 'shp',
  'sle', 'sos', 'srd', 'std', 'szl', 'thb', 'tjs', 'tnd', 'top', 'try', 'ttd', 'twd', 'tzs', 'uah', 'ugx', 'uyu',
  'uzs', 'vnd', 'vuv', 'wst', 'xaf', 'xcd', 'xof', 'xpf', 'yer', 'zar', 'zmw',
]);

/** Amounts in these are whole units (¥500 is 500), not hundredths. */
export const ZERO_DECIMAL_CURRENCIES: ReadonlySet<string> = new Set([
  'bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg', 'rwf', 'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf',
]);

/** Three-decimal currencies: Stripe takes thousandths but only in steps of 10 (the last digit must be 0). */
export const THREE_DECIMAL_CURRENCIES: ReadonlySet<string> = new Set(['bhd', 'jod', 'kwd', 'omr', 'tnd']);

/**
 * Stripe's published minimum charge, in the currency's minor unit (whole units
 * for zero-decimal ones). Currencies not listed must convert to at least
 * $0.50, which depends on the day's rate: we check only that they are > 0.
 */
export const MINIMUM_AMOUNTS: Readonly<Record<string, number>> = {
  usd: 50, aed: 200, aud: 50, bgn: 100, brl: 50, cad: 50, chf: 50, czk: 1500, dkk: 250, eur: 50, gbp: 30,
  hkd: 400, huf: 17500, inr: 50, jpy: 50, mxn: 1000, myr: 200, nok: 300, nzd: 50, pln: 200, ron: 200,
  sek: 300, sgd: 50, thb: 1000,
};

/** Stripe's largest amount for one charge, in minor units, for every currency here. */
export const MAXIMUM_AMOUNT = 99_999_999;

/** Which field is wrong and why, or null when Stripe would accept the currency and amount. */
export interface CurrencyProblem {
  field: 'currency' | 'items';
  message: string;
}

export function checkCurrency(currency: string): CurrencyProblem | null {
  if (STRIPE_CURRENCIES.has(currency)) return null;
  return { field: 'currency', message: `currency "${currency.slice(0, 16)}" is not one Stripe supports (lower-case ISO 4217, such as "usd")` };
}

/** The order total (the sum of items) against the currency's limits; assumes checkCurrency passed. */
export function checkAmount(currency: string, amount: number): CurrencyProblem | null {
  const unit = ZERO_DECIMAL_CURRENCIES.has(currency) ? 'whole units' : 'minor units';
  const minimum = MINIMUM_AMOUNTS[currency] ?? 1;
  if (!Number.isSafeInteger(amount) || amount < minimum) {
    return { field: 'items', message: `items add up to ${amount} ${unit} of ${currency}, less than Stripe's minimum charge of ${minimum}` };
  }
  if (amount > MAXIMUM_AMOUNT) {
    return { field: 'items', message: `items add up to ${amount} ${unit} of ${currency}, more than Stripe's maximum charge of ${MAXIMUM_AMOUNT}` };
  }
  if (THREE_DECIMAL_CURRENCIES.has(currency) && amount % 10 !== 0) {
    return { field: 'items', message: `items add up to ${amount} thousandths of ${currency}; Stripe takes ${currency} only in steps of 10 (the last digit must be 0)` };
  }
  return null;
}
