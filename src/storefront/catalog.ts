/** One thing the demo shop sells. Prices are in cents, as the orders API takes them. */
export interface Product {
  sku: string;
  name: string;
  description: string;
  /** Minor units (cents). */
  unitAmount: number;
  /** A monogram shown in place of a picture: the shop loads no assets, and emoji fonts are not everywhere. */
  mark: string;
  /** Background of the card's picture area. */
  tint: string;
}

export const SHOP_CURRENCY = 'usd';
export const MAX_QUANTITY = 10;

/** The catalogue lives in code: the demo has no product table, and the orders API takes names and prices as given. */
export const PRODUCTS: readonly Product[] = [
  { sku: 'TEE-SETTLE', name: 'Settle T-shirt', description: 'Soft cotton, printed with the state machine.', unitAmount: 2400, mark: 'T', tint: '#e0e7ff' },
  { sku: 'MUG-WEBHOOK', name: 'Webhook mug', description: 'Holds exactly one coffee, delivered at least once.', unitAmount: 1400, mark: 'M', tint: '#fdecd2' },
  { sku: 'STICKERS-3', name: 'Sticker pack', description: 'Three stickers: paid, refunded, disputed.', unitAmount: 500, mark: 'S', tint: '#d9f2e3' },
  { sku: 'HOODIE-IDEMPOTENT', name: 'Idempotent hoodie', description: 'Wear it twice, it is still one hoodie.', unitAmount: 5900, mark: 'H', tint: '#ede0fb' },
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
