import request from 'supertest';
import type Stripe from 'stripe';
import { OrderJson, orderBody, TestStack } from './test-app';
import { waitFor } from './wait';

/** What the e2e suites do to orders through the API and the mock PSP, written once. */

export async function createOrder(stack: TestStack, overrides: Record<string, unknown> = {}): Promise<OrderJson> {
  return (await request(stack.url).post('/orders').send(orderBody(overrides)).expect(201)).body;
}

export async function getOrder(stack: TestStack, id: string): Promise<OrderJson> {
  return (await request(stack.url).get(`/orders/${id}`).expect(200)).body;
}

/** Stored events the processor has not finished with. */
export async function unappliedEvents(stack: Pick<TestStack, 'db'>): Promise<number> {
  return Number((await stack.db.query(`SELECT count(*) AS n FROM webhook_events WHERE status NOT IN ('processed', 'ignored')`)).rows[0].n);
}

/** Every delivery the mock has made or still means to make is in, and every stored event applied. */
export async function settled(stack: TestStack, timeoutMs = 20000): Promise<void> {
  await stack.mock.idle(30000);
  await waitFor(async () => (await unappliedEvents(stack)) === 0, 'every stored event applied', timeoutMs);
}

/** Money taken on a PaymentIntent of its own that names the order: a second checkout, a dashboard charge. */
export function strayPayment(stack: TestStack, order: Pick<OrderJson, 'id' | 'currency' | 'amount'>, amount = order.amount): Promise<Stripe.PaymentIntent> {
  return stack.stripe.paymentIntents.create({
    amount,
    currency: order.currency,
    metadata: { order_id: order.id },
    payment_method: 'pm_card_visa',
    confirm: true,
    automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
  });
}
