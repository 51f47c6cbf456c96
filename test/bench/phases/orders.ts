import { MockPsp } from '../../../src/mock-psp';
import { postOrders } from '../lib/load';

export interface OrdersResult {
  rate: number;
  p50: number;
  p99: number;
  errors: number;
  created: number;
  pspCallsPerOrder: number;
}

export const ORDER_BODY = JSON.stringify({
  currency: 'usd',
  items: [
    { sku: 'TSHIRT-M', name: 'T-shirt, size M', unitAmount: 1299, quantity: 2 },
    { sku: 'MUG', name: 'Mug', unitAmount: 850, quantity: 1 },
  ],
  customerEmail: 'bench@example.com',
});

/** POST /orders in a closed loop: each one writes the order and creates its PaymentIntent at the mock PSP. */
export async function runOrdersPhase(settleUrl: string, mock: MockPsp, connections: number, durationS: number): Promise<OrdersResult> {
  const before = mock.stats().requests;
  const r = await postOrders(settleUrl, { connections, durationS, body: ORDER_BODY });
  const calls = mock.stats().requests - before;
  return { rate: r.rate, p50: r.p50, p99: r.p99, errors: r.errors, created: r.ok, pspCallsPerOrder: r.ok > 0 ? calls / r.ok : NaN };
}
