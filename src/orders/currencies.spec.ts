import { checkAmount, checkCurrency, MAXIMUM_AMOUNT, MINIMUM_AMOUNTS, STRIPE_CURRENCIES, THREE_DECIMAL_CURRENCIES, ZERO_DECIMAL_CURRENCIES } from './currencies';

describe('Stripe currency table', () => {
  it('knows every zero- and three-decimal currency and every minimum as a supported currency', () => {
    for (const c of [...ZERO_DECIMAL_CURRENCIES, ...THREE_DECIMAL_CURRENCIES, ...Object.keys(MINIMUM_AMOUNTS)]) expect(STRIPE_CURRENCIES.has(c)).toBe(true);
    for (const c of STRIPE_CURRENCIES) expect(c).toMatch(/^[a-z]{3}$/);
  });

  it.each(['usd', 'eur', 'jpy', 'krw', 'kwd', 'huf'])('accepts %s', (c) => expect(checkCurrency(c)).toBeNull());

  it.each(['xyz', 'usx', 'btc', 'hrk'])('refuses %s naming currency', (c) => {
    expect(checkCurrency(c)).toMatchObject({ field: 'currency', message: expect.stringContaining(c) });
  });

  it('counts zero-decimal currencies in whole units: ¥50 is the minimum, ¥49 is refused', () => {
    expect(checkAmount('jpy', 50)).toBeNull();
    expect(checkAmount('jpy', 49)).toMatchObject({ field: 'items', message: expect.stringMatching(/whole units.*minimum charge of 50/) });
  });

  it.each([
    ['usd', 50], ['gbp', 30], ['eur', 50], ['huf', 17500], ['czk', 1500], ['mxn', 1000], ['hkd', 400],
  ])('%s: %i minor units is the minimum', (currency, minimum) => {
    expect(checkAmount(currency as string, minimum as number)).toBeNull();
    expect(checkAmount(currency as string, (minimum as number) - 1)).toMatchObject({ field: 'items' });
  });

  it('takes any positive amount where the minimum depends on the exchange rate', () => {
    expect(checkAmount('vnd', 1)).toBeNull();
    expect(checkAmount('vnd', 0)).toMatchObject({ field: 'items' });
  });

  it('refuses more than 99999999 in every currency', () => {
    expect(checkAmount('usd', MAXIMUM_AMOUNT)).toBeNull();
    expect(checkAmount('usd', MAXIMUM_AMOUNT + 1)).toMatchObject({ field: 'items', message: expect.stringContaining('maximum') });
    expect(checkAmount('jpy', MAXIMUM_AMOUNT + 1)).toMatchObject({ field: 'items' });
  });

  it('takes three-decimal currencies only in steps of 10', () => {
    expect(checkAmount('kwd', 1230)).toBeNull();
    expect(checkAmount('kwd', 1235)).toMatchObject({ field: 'items', message: expect.stringContaining('steps of 10') });
  });

  it('refuses an amount that is not a safe integer', () => {
    expect(checkAmount('usd', 2 ** 53)).toMatchObject({ field: 'items' });
    expect(checkAmount('usd', Number.NaN)).toMatchObject({ field: 'items' });
  });
});
