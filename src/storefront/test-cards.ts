/**
 * Stripe's test card numbers the demo's card form takes, and the test
 * PaymentMethod each stands for. A card number never goes to the PSP from our
 * server (real Stripe only takes them through Stripe.js); the test
 * PaymentMethod does, which Stripe's test mode and the bundled mock both know.
 */
export const TEST_CARDS: ReadonlyArray<{ number: string; paymentMethod: string; outcome: string }> = [
  { number: '4242424242424242', paymentMethod: 'pm_card_visa', outcome: 'succeeds' },
  { number: '4000000000000002', paymentMethod: 'pm_card_chargeDeclined', outcome: 'is declined' },
  { number: '4000002760003184', paymentMethod: 'pm_card_authenticationRequired', outcome: 'asks for 3-D Secure' },
];

/** The test PaymentMethod for a card number as typed (spaces and dashes allowed), or undefined for any other number. */
export function testPaymentMethodFor(cardNumber: string): string | undefined {
  const digits = cardNumber.replace(/[\s-]/g, '');
  return TEST_CARDS.find((card) => card.number === digits)?.paymentMethod;
}

/** 4242424242424242 -> "4242 4242 4242 4242". */
export function groupCardNumber(number: string): string {
  return number.replace(/(\d{4})(?=\d)/g, '$1 ');
}
