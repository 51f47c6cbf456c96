import { formatMoney, PRODUCTS } from './catalog';
import { esc, orderPage, productPage } from './pages';
import { testPaymentMethodFor } from './test-cards';
import type { OrderView } from '../orders/dto/order.view';

describe('storefront helpers', () => {
  it('maps Stripe\'s test card numbers, as typed, to their test PaymentMethods and nothing else', () => {
    expect(testPaymentMethodFor('4242 4242 4242 4242')).toBe('pm_card_visa');
    expect(testPaymentMethodFor('4000-0000-0000-0002')).toBe('pm_card_chargeDeclined');
    expect(testPaymentMethodFor('4000002760003184')).toBe('pm_card_authenticationRequired');
    expect(testPaymentMethodFor('4242424242424241')).toBeUndefined();
    expect(testPaymentMethodFor('pm_card_visa')).toBeUndefined();
  });

  it('prices in cents and shows them in the currency\'s units', () => {
    expect(PRODUCTS.every((p) => Number.isInteger(p.unitAmount) && p.unitAmount > 0)).toBe(true);
    expect(formatMoney(2400, 'usd')).toBe('$24.00');
    expect(formatMoney(500, 'jpy')).toBe('¥500');
  });

  it('offers the card form only against a Stripe-compatible test server, and says why otherwise', () => {
    const product = PRODUCTS[0]!;
    const withMock = productPage({ nonce: 'n', cardFormAvailable: true }, product, { quantity: '1', email: '' });
    const withStripe = productPage({ nonce: 'n', cardFormAvailable: false }, product, { quantity: '1', email: '' });
    expect(withMock).toContain('Pay by card here');
    expect(withStripe).not.toContain('Pay by card here');
    expect(withStripe).toContain('Stripe.js');
    expect(withStripe).toContain('Pay on hosted page');
  });

  it('escapes what customers typed wherever the order page shows it', () => {
    const order = {
      id: '0b7c2a9e-5f1d-4c8e-9a7b-3d2e1f0a9b8c',
      status: 'pending_payment',
      amount: 2400,
      currency: 'usd',
      items: [{ sku: 'X', name: '<img src=x onerror=alert(1)>', unitAmount: 2400, quantity: 1 }],
      customerEmail: '"><script>alert(1)</script>@example.com',
      captureMethod: 'automatic',
      payment: { id: 'pi_1', status: 'requires_payment_method', clientSecret: 's' },
      amountRefunded: 0,
      history: [],
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:00.000Z',
    } as OrderView;
    const html = orderPage({ nonce: 'n', cardFormAvailable: true }, order, { fromCheckout: false });
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<script>alert(1)');
    expect(html).toContain(esc(order.customerEmail));
    expect(html).toContain('data-status="pending_payment"');
  });
});
