import http from 'node:http';
import { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import Stripe from 'stripe';
import { MockPsp } from '../../src/mock-psp';
import { launchBrowser } from '../support/browser';
import { PAYMENT_PAGE_PNG, savePaymentPageScreenshot } from '../support/screenshots';
import { waitFor } from '../support/wait';
import { mockSdk } from './support';

/**
 * The hosted Checkout page in a real browser (Chromium through
 * playwright-core): a customer types Stripe's test cards, passes or fails
 * 3-D Secure, uses the bank redirect, or goes back. Each test checks the
 * mock's sessions, PaymentIntents and events, not only what the page says.
 */

/** A stand-in for the shop the customer returns to: it answers every path with a page naming it. */
class Shop {
  private server!: http.Server;
  url = '';

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(`<!doctype html><title>Shop</title><h1>Shop: ${(req.url ?? '').replace(/[<>&"]/g, '')}</h1>`);
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

describe('The hosted Checkout page in Chromium', () => {
  let mock: MockPsp;
  let stripe: Stripe;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const shop = new Shop();

  beforeAll(async () => {
    await shop.start();
    // Bank payments settle 3 s of mock time after authorization: 3 ms here.
    mock = await MockPsp.start({ port: 0, timeScale: 0.001 });
    stripe = mockSdk(mock);
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await mock?.stop();
    await shop.stop();
  });
  beforeEach(async () => {
    context = await browser.newContext();
    page = await context.newPage();
  });
  afterEach(() => context.close());

  const newSession = (extra: Partial<Stripe.Checkout.SessionCreateParams> = {}) =>
    stripe.checkout.sessions.create({
      mode: 'payment',
      line_items: [
        { price_data: { currency: 'usd', unit_amount: 1299, product_data: { name: 'Blue mug' } }, quantity: 2 },
        { price_data: { currency: 'usd', unit_amount: 500, product_data: { name: 'Gift wrap' } }, quantity: 1 },
      ],
      success_url: `${shop.url}/success?session_id={CHECKOUT_SESSION_ID}`,
      cancel_url: `${shop.url}/cart`,
      payment_intent_data: { metadata: { order_id: 'order-browser' } },
      ...extra,
    });

  const typesFor = (sessionId: string, piId?: string | null) =>
    mock
      .events()
      .filter((e) => {
        const o = e.data.object as { id?: string; payment_intent?: string };
        return o.id === sessionId || (piId && (o.id === piId || o.payment_intent === piId));
      })
      .map((e) => e.type);

  const session = (id: string) => stripe.checkout.sessions.retrieve(id);

  async function payWithCard(number: string): Promise<void> {
    await page.getByLabel('Card number', { exact: true }).fill(number);
    await page.getByRole('button', { name: 'Pay', exact: true }).click();
  }

  it('shows the line items and the total; 4242 4242 4242 4242 pays and lands on success_url with the session id', async () => {
    const created = await newSession();
    await page.goto(created.url as string);
    const text = await page.locator('main').innerText();
    expect(text).toContain('Blue mug');
    expect(text).toContain('× 2');
    expect(text).toContain('Gift wrap');
    expect(text).toMatch(/Total\s+30\.98 USD/);

    await payWithCard('4242 4242 4242 4242');
    await page.waitForURL(`${shop.url}/success?session_id=${created.id}`);

    const done = await session(created.id);
    expect(done).toMatchObject({ status: 'complete', payment_status: 'paid' });
    expect(await stripe.paymentIntents.retrieve(done.payment_intent as string)).toMatchObject({ status: 'succeeded', amount: 3098, metadata: { order_id: 'order-browser' } });
    expect(typesFor(created.id, done.payment_intent as string)).toEqual(['payment_intent.created', 'charge.succeeded', 'payment_intent.succeeded', 'checkout.session.completed']);
  });

  it('a declined card shows the decline and leaves the session open; 4242 then pays on the same PaymentIntent', async () => {
    const created = await newSession();
    await page.goto(created.url as string);
    await payWithCard('4000 0000 0000 0002');
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').innerText()).toContain('declined');
    expect(page.url()).toContain(`/c/pay/${created.id}`);
    const open = await session(created.id);
    expect(open).toMatchObject({ status: 'open', payment_status: 'unpaid' });
    const piId = open.payment_intent as string;
    expect(typesFor(created.id, piId)).toEqual(['payment_intent.created', 'charge.failed', 'payment_intent.payment_failed']);

    await payWithCard('4242424242424242');
    await page.waitForURL(`${shop.url}/success?session_id=${created.id}`);
    expect(await session(created.id)).toMatchObject({ status: 'complete', payment_status: 'paid', payment_intent: piId });
    expect(typesFor(created.id, piId).slice(3)).toEqual(['charge.succeeded', 'payment_intent.succeeded', 'checkout.session.completed']);
  });

  it('3-D Secure completed: the challenge page, then success_url', async () => {
    const created = await newSession();
    await page.goto(created.url as string);
    await payWithCard('4000 0027 6000 3184');
    await page.getByRole('button', { name: 'Complete authentication' }).click();
    await page.waitForURL(`${shop.url}/success?session_id=${created.id}`);
    const done = await session(created.id);
    expect(done).toMatchObject({ status: 'complete', payment_status: 'paid' });
    expect(typesFor(created.id, done.payment_intent as string)).toEqual([
      'payment_intent.created', 'payment_intent.requires_action', 'charge.succeeded', 'payment_intent.succeeded', 'checkout.session.completed',
    ]);
  });

  it('3-D Secure failed: back on the payment page with an error, the session still open', async () => {
    const created = await newSession();
    await page.goto(created.url as string);
    await payWithCard('4000 0027 6000 3184');
    await page.getByRole('button', { name: 'Fail authentication' }).click();
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').innerText()).toContain('unable to authenticate');
    await page.getByLabel('Card number', { exact: true }).waitFor();
    const open = await session(created.id);
    expect(open.status).toBe('open');
    expect(await stripe.paymentIntents.retrieve(open.payment_intent as string)).toMatchObject({ status: 'requires_payment_method', last_payment_error: { code: 'payment_intent_authentication_failure' } });
    expect(typesFor(created.id, open.payment_intent as string)).toEqual(['payment_intent.created', 'payment_intent.requires_action', 'payment_intent.payment_failed']);
  });

  it('bank redirect authorized: success_url at once with the session complete and unpaid, then the async success', async () => {
    const created = await newSession();
    await page.goto(created.url as string);
    await page.getByRole('button', { name: 'Pay with bank redirect' }).click();
    await page.getByRole('button', { name: 'Authorize test payment' }).click();
    await page.waitForURL(`${shop.url}/success?session_id=${created.id}`);
    const piId = (await session(created.id)).payment_intent as string;
    const completed = mock.events().find((e) => e.type === 'checkout.session.completed' && (e.data.object as { id: string }).id === created.id);
    expect(completed?.data.object).toMatchObject({ status: 'complete', payment_status: 'unpaid' });
    await waitFor(async () => typesFor(created.id, piId).includes('checkout.session.async_payment_succeeded'), 'checkout.session.async_payment_succeeded');
    expect(typesFor(created.id, piId)).toEqual([
      'payment_intent.created', 'charge.pending', 'payment_intent.processing', 'checkout.session.completed',
      'charge.succeeded', 'payment_intent.succeeded', 'checkout.session.async_payment_succeeded',
    ]);
    expect(await session(created.id)).toMatchObject({ status: 'complete', payment_status: 'paid' });
  });

  it('bank redirect failed: success_url too (the outcome is not known yet), then the async failure', async () => {
    const created = await newSession();
    await page.goto(created.url as string);
    await page.getByRole('button', { name: 'Pay with bank redirect' }).click();
    await page.getByRole('button', { name: 'Fail test payment' }).click();
    await page.waitForURL(`${shop.url}/success?session_id=${created.id}`);
    const piId = (await session(created.id)).payment_intent as string;
    await waitFor(async () => typesFor(created.id, piId).includes('checkout.session.async_payment_failed'), 'checkout.session.async_payment_failed');
    expect(typesFor(created.id, piId)).toEqual([
      'payment_intent.created', 'charge.pending', 'payment_intent.processing', 'checkout.session.completed',
      'charge.failed', 'payment_intent.payment_failed', 'checkout.session.async_payment_failed',
    ]);
    expect(await session(created.id)).toMatchObject({ status: 'complete', payment_status: 'unpaid' });
    expect(await stripe.paymentIntents.retrieve(piId)).toMatchObject({ status: 'requires_payment_method' });
  });

  it('the Back link goes to cancel_url and changes nothing', async () => {
    const created = await newSession();
    await page.goto(created.url as string);
    await page.getByRole('link', { name: 'Back' }).click();
    await page.waitForURL(`${shop.url}/cart`);
    expect(await session(created.id)).toMatchObject({ status: 'open', payment_intent: null });
    expect(typesFor(created.id)).toEqual([]);
  });

  it('an expired session\'s page says so and offers no payment', async () => {
    const created = await newSession();
    await stripe.checkout.sessions.expire(created.id);
    await page.goto(created.url as string);
    expect(await page.locator('h1').innerText()).toContain('expired');
    expect(await page.getByLabel('Card number', { exact: true }).count()).toBe(0);
  });

  // Only on request: it writes into docs/ for the README.
  if (process.env.SAVE_SCREENSHOTS === '1') {
    it('saves a screenshot of the payment page to docs/payment-page.png', async () => {
      expect(await savePaymentPageScreenshot(browser)).toBe(PAYMENT_PAGE_PNG);
    });
  }
});
