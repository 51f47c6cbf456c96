import type Stripe from 'stripe';
import { noSuchObject } from './errors';
import { EventLog, RequestContext } from './events';
import { newId, nowSeconds } from './ids';

/**
 * Products and one-time Prices: only what Checkout line items need (the
 * Stripe CLI's checkout fixtures create a product and a price first).
 */
export class Catalog {
  readonly products = new Map<string, Stripe.Product>();
  readonly prices = new Map<string, Stripe.Price>();

  constructor(private readonly events: EventLog) {}

  product(id: string, param = 'product'): Stripe.Product {
    const product = this.products.get(id);
    if (!product) throw noSuchObject('product', id, param);
    return product;
  }

  price(id: string, param = 'price'): Stripe.Price {
    const price = this.prices.get(id);
    if (!price) throw noSuchObject('price', id, param);
    return price;
  }

  createProduct(input: { name: string; description?: string; metadata?: Record<string, string> }, request: RequestContext | null): Stripe.Product {
    const now = nowSeconds();
    const product = {
      id: newId('prod', 14),
      object: 'product',
      active: true,
      created: now,
      default_price: null,
      description: input.description ?? null,
      images: [],
      livemode: false,
      marketing_features: [],
      metadata: input.metadata ?? {},
      name: input.name,
      package_dimensions: null,
      shippable: null,
      statement_descriptor: null,
      tax_code: null,
      unit_label: null,
      updated: now,
      url: null,
    } as unknown as Stripe.Product;
    this.products.set(product.id, product);
    // Inline product_data makes a product too, but Stripe announces only products created through the API.
    if (request) this.events.emit('product.created', product, request);
    return product;
  }

  createPrice(input: { product: string; currency: string; unitAmount: number; nickname?: string; metadata?: Record<string, string> }, request: RequestContext | null): Stripe.Price {
    const price = {
      id: newId('price'),
      object: 'price',
      active: true,
      billing_scheme: 'per_unit',
      created: nowSeconds(),
      currency: input.currency,
      custom_unit_amount: null,
      livemode: false,
      lookup_key: null,
      metadata: input.metadata ?? {},
      nickname: input.nickname ?? null,
      product: this.product(input.product).id,
      recurring: null,
      tax_behavior: 'unspecified',
      tiers_mode: null,
      transform_quantity: null,
      type: 'one_time',
      unit_amount: input.unitAmount,
      unit_amount_decimal: String(input.unitAmount),
    } as unknown as Stripe.Price;
    this.prices.set(price.id, price);
    if (request) this.events.emit('price.created', price, request);
    return price;
  }
}
