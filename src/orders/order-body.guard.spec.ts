import { MAX_ORDER_LINES, precheckOrderBody } from './order-body.guard';

const line = { sku: 'A', name: 'A', unitAmount: 100, quantity: 1 };
const order = (over: Record<string, unknown> = {}) => ({ currency: 'usd', items: [line], customerEmail: 'a@example.com', ...over });

describe('precheckOrderBody', () => {
  it('passes a valid order, and leaves shapes it does not check to the DTO', () => {
    expect(precheckOrderBody(order())).toBeNull();
    expect(precheckOrderBody(order({ currency: 'USD' }))).toBeNull();
    expect(precheckOrderBody(order({ items: undefined }))).toBeNull();
  });

  it('refuses too many lines before looking at any of them', () => {
    const many = new Array(30_000).fill({});
    expect(precheckOrderBody(order({ items: many }))).toBe(`items must hold at most ${MAX_ORDER_LINES} lines, got 30000`);
    expect(precheckOrderBody(order({ items: new Array(MAX_ORDER_LINES).fill(line) }))).toBeNull();
  });

  it.each([
    ['a nested array', [[]], 'items.0'],
    ['a line inside an array', [[line]], 'items.0'],
    ['null', [line, null], 'items.1'],
    ['a string', ['x'], 'items.0'],
  ])('refuses a line that is %s, naming it', (_n, items, field) => {
    expect(precheckOrderBody(order({ items }))).toMatch(new RegExp(`^${field.replace('.', '\\.')} must be an object`));
  });

  it('refuses amounts that are not safe integers, and a total that is not', () => {
    expect(precheckOrderBody(order({ items: [{ ...line, unitAmount: 1e300 }] }))).toMatch(/^items\.0\.unitAmount/);
    expect(precheckOrderBody(order({ items: [{ ...line, quantity: 2 ** 53 }] }))).toMatch(/^items\.0\.quantity/);
    expect(precheckOrderBody(order({ items: [{ ...line, unitAmount: 2 ** 40, quantity: 2 ** 20 }] }))).toMatch(/^items add up/);
  });

  it.each([
    ['NUL in a name', { items: [{ ...line, name: 'a\u0000b' }] }, 'items.0.name'],
    ['a lone high surrogate in a sku', { items: [{ ...line, sku: 'a\ud800' }] }, 'items.0.sku'],
    ['a lone low surrogate in the email', { customerEmail: '\udc00@example.com' }, 'customerEmail'],
    ['NUL in an unknown field', { note: { deep: '\u0000' } }, 'note.deep'],
  ])('refuses %s, naming the field', (_n, over, field) => {
    expect(precheckOrderBody(order(over))).toBe(`${field} must not contain NUL characters or unpaired UTF-16 surrogates`);
  });

  it('accepts a surrogate pair (an emoji)', () => {
    expect(precheckOrderBody(order({ items: [{ ...line, name: 'Mug \ud83d\ude00' }] }))).toBeNull();
  });

  it('refuses a currency Stripe does not support, and a body that is not an object', () => {
    expect(precheckOrderBody(order({ currency: 'xyz' }))).toMatch(/^currency "xyz"/);
    expect(precheckOrderBody([order()])).toMatch(/JSON object/);
    expect(precheckOrderBody(null)).toMatch(/JSON object/);
  });
});
