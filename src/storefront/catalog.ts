/** One thing the demo shop sells. Prices are in cents, as the orders API takes them. */
export interface Product {
  sku: string;
  name: string;
  description: string;
  /** Minor units (cents). */
  unitAmount: number;
  /** Shown on the card in place of a picture: the shop loads no assets from anywhere. */
  glyph: string;
  /** Background of the card's picture area. */
  tint: string;
}

export const SHOP_CURRENCY = 'usd';
export const MAX_QUANTITY = 10;

/** The catalogue lives in code: the demo has no product table, and the orders API takes names and prices as given. */
export const PRODUCTS: readonly Product[] = [
  { sku: 'TEE-SETTLE', name: 'Settle T-shirt', description: 'Soft cotton, printed with the state machine.', unitAmount: 2400, glyph: '👕', tint: '#e8f0fe' },
  { sku: 'MUG-WEBHOOK', name: 'Webhook mug', description: 'Holds exactly one coffee, delivered at least once.', unitAmount: 1400, glyph: '☕', tint: '#fdf2e3' },
  { sku: 'STICKERS-3', name: 'Sticker pack', description: 'Three stickers: paid, refunded, disputed.', unitAmount: 500, glyph: '🏷️', tint: '#e9f7ef' },
  { sku: 'HOODIE-IDEMPOTENT', name: 'Idempotent hoodie', description: 'Wear it twice, it is still one hoodie.', unitAmount: 5900, glyph: '🧥', tint: '#f3e8fd' },
];

export function findProduct(sku: string): Product | undefined {
  return PRODUCTS.find((p) => p.sku === sku);
}

/** 2400 usd -> "$24.00", in the customer's terms. */
export function formatMoney(amount: number, currency: string): string {
  try {
    const digits = new Intl.NumberFormat('en-US', { style: 'currency', currency: currency.toUpperCase() }).resolvedOptions().maximumFractionDigits ?? 2;
    return new Intl.NumberFormat('en-US', { style: 'currency', currency: currency.toUpperCase() }).format(amount / 10 ** digits);
  } catch {
    return `${amount} ${currency}`;
  }
}
