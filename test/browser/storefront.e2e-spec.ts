import type { Browser, BrowserContext, Page } from 'playwright-core';
import request from 'supertest';
import { startTestStack, TestStack } from '../support/test-app';
import { waitFor } from '../support/wait';
import { launchBrowser } from '../support/browser';

/**
 * The demo storefront in a real browser (Chromium through playwright-core)
 * against the whole stack: the app with DEMO_STOREFRONT=true, PostgreSQL,
 * Redis and the mock PSP delivering signed webhooks. Every flow is checked on
 * the page and on the API (GET /orders/:id).
 */
jest.setTimeout(120_000);

const EMAIL = 'ada@example.com';

describe('demo storefront in a browser', () => {
  let stack: TestStack;
  let browser: Browser;
  let context: BrowserContext;

  beforeAll(async () => {
    stack = await startTestStack({ env: { DEMO_STOREFRONT: 'true' } });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });
  beforeEach(async () => {
    context = await browser.newContext();
  });
  afterEach(async () => {
    await context?.close();
  });

  const apiOrder = async (id: string) => (await request(stack.url).get(`/orders/${id}`).expect(200)).body;
  const apiStatusBecomes = (id: string, status: string) =>
    waitFor(async () => {
      const order = await apiOrder(id);
      return order.status === status ? order : undefined;
    }, `order ${id} to be ${status} on the API`);
  /** The badge's status once it shows `status` (the page changes it live; a wrong status times out naming what it saw). */
  const badgeShows = async (page: Page, status: string) => {
    await page.waitForSelector(`[data-testid=status][data-status="${status}"]`, { timeout: 20_000 }).catch(async (err: Error) => {
      throw new Error(`${err.message}; the badge shows ${await page.getAttribute('[data-testid=status]', 'data-status')}; ${await whatTheServerSays(page)}`);
    });
    return page.textContent('[data-testid=status]');
  };
  /**
   * For a badge that never changed: the page's live-stream line, the order on the API, and each of its
   * PSP events as the mock delivered it and the inbox holds it, so a failure says where the change stopped.
   */
  const whatTheServerSays = async (page: Page): Promise<string> => {
    const id = /\/shop\/orders\/([0-9a-f-]{36})/.exec(page.url())?.[1];
    if (!id) return `page at ${page.url()}`;
    const order = await apiOrder(id);
    const intentIds = new Set([order.payment?.id, ...((order.unexpectedPayments ?? []) as Array<{ id: string }>).map((p) => p.id)]);
    const events = stack.mock
      .events()
      .filter((e) => intentIds.has((e.data.object as { id?: string; payment_intent?: string }).id) || intentIds.has((e.data.object as { payment_intent?: string }).payment_intent))
      .map((e) => ({ id: e.id, type: e.type, created: e.created, delivery: stack.mock.deliveryState(e.id) }));
    const rows = (await stack.db.query(`SELECT id, status, outcome, attempts, job_id, last_error FROM webhook_events WHERE id = ANY($1)`, [events.map((e) => e.id)])).rows;
    return `live line "${await page.textContent('#live')}"; API status ${order.status}, history ${JSON.stringify(order.history)}; events ${JSON.stringify(events)}; inbox ${JSON.stringify(rows)}`;
  };
  const orderIdOf = (page: Page) => {
    const match = /\/shop\/orders\/([0-9a-f-]{36})/.exec(page.url());
    if (!match) throw new Error(`not on an order page: ${page.url()}`);
    return match[1] as string;
  };

  /** From the shop's front page to the card form, buying `quantity` of the first product. */
  async function buyWithCardForm(page: Page, quantity = 1): Promise<string> {
    await page.goto(`${stack.url}/`);
    await page.locator('article.card').first().getByRole('link', { name: 'Buy' }).click();
    await page.getByLabel('Quantity').fill(String(quantity));
    await page.getByLabel('Email').fill(EMAIL);
    await page.getByRole('button', { name: 'Pay by card here' }).click();
    await page.waitForURL(/\/shop\/orders\/[0-9a-f-]{36}\/pay$/);
    return orderIdOf(page);
  }

  /** From the shop's front page to the PSP's hosted page (the mock's); returns the Checkout Session's id and its order's. */
  async function buyOnHostedPage(page: Page, quantity = 1): Promise<{ sessionId: string; orderId: string }> {
    await page.goto(`${stack.url}/`);
    await page.locator('article.card').nth(1).getByRole('link', { name: 'Buy' }).click();
    await page.getByLabel('Quantity').fill(String(quantity));
    await page.getByLabel('Email').fill(EMAIL);
    await page.getByRole('button', { name: 'Pay on hosted page' }).click();
    await page.waitForURL((url) => url.origin === new URL(stack.mock.url).origin);
    const sessionId = /(cs_\w+)/.exec(page.url())?.[1];
    if (!sessionId) throw new Error(`no Checkout Session in ${page.url()}`);
    const orderId = (await stack.stripe.checkout.sessions.retrieve(sessionId)).client_reference_id as string;
    return { sessionId, orderId };
  }

  async function payOnHostedPage(page: Page, number: string): Promise<void> {
    await page.getByLabel('Card number', { exact: true }).fill(number);
    await page.getByRole('button', { name: 'Pay', exact: true }).click();
  }

  /** Back from the hosted page on the order's own page, with the session named. */
  const backOnOrderPage = (page: Page, ids: { sessionId: string; orderId: string }) =>
    page.waitForURL(`${stack.url}/shop/orders/${ids.orderId}?session=${ids.sessionId}`);

  async function payWithCard(page: Page, number: string): Promise<void> {
    await page.getByLabel('Card number').fill(number);
    await page.getByRole('button', { name: 'Pay', exact: true }).click();
  }

  it('lists the products at / and keeps the API routes the API\'s', async () => {
    const page = await context.newPage();
    await page.goto(`${stack.url}/`);
    const names = await page.locator('article.card h2').allTextContents();
    expect(names.length).toBeGreaterThanOrEqual(3);
    expect(names.length).toBeLessThanOrEqual(4);
    expect(await page.locator('article.card .price').first().textContent()).toMatch(/^\$\d+\.\d\d$/);
    // The shop sits beside the API, never in its place.
    await request(stack.url).get('/health').expect(200);
    await request(stack.url).get('/orders').expect(401);
    await request(stack.url).get('/shop/products/NO-SUCH-THING').expect(404);
  });

  it('pays with 4242 4242 4242 4242: an order page opened before the payment turns paid live, without a reload', async () => {
    const payer = await context.newPage();
    const id = await buyWithCardForm(payer, 2);

    // The current status is on the page as the server sends it, before any script runs.
    const html = (await request(stack.url).get(`/shop/orders/${id}`).expect(200)).text;
    expect(html).toContain('data-status="pending_payment"');

    const watcher = await context.newPage();
    await watcher.goto(`${stack.url}/shop/orders/${id}`);
    expect(await badgeShows(watcher, 'pending_payment')).toBe('pending payment');
    await watcher.waitForSelector('#live:has-text("Live updates: on")');
    // A mark on this document: a reload would lose it.
    await watcher.evaluate(() => ((globalThis as unknown as { loadedOnce: string }).loadedOnce = 'still here'));

    await payWithCard(payer, '4242 4242 4242 4242');
    await payer.waitForURL(new RegExp(`/shop/orders/${id}$`));

    expect(await badgeShows(watcher, 'paid')).toBe('paid');
    expect(await watcher.evaluate(() => (globalThis as unknown as { loadedOnce?: string }).loadedOnce)).toBe('still here');
    await watcher.waitForSelector('#history td:has-text("paid")');
    expect(await badgeShows(payer, 'paid')).toBe('paid');

    const order = await apiOrder(id);
    expect(order).toMatchObject({ status: 'paid', amount: 2 * 2400, customerEmail: EMAIL, items: [{ quantity: 2, unitAmount: 2400 }] });
    expect(order.payment.checkoutUrl ?? undefined).toBeUndefined();
    expect(order.history.map((h: { to: string }) => h.to)).toEqual(['paid']);
  });

  it('shows a declined card, then takes a good one', async () => {
    const page = await context.newPage();
    const id = await buyWithCardForm(page);

    await payWithCard(page, '4000000000000002');
    await page.waitForURL(/\/pay\?result=declined$/);
    expect(await page.textContent('.notice')).toContain('declined');
    await apiStatusBecomes(id, 'payment_failed');

    await payWithCard(page, '4242424242424242');
    await page.waitForURL(new RegExp(`/shop/orders/${id}$`));
    expect(await badgeShows(page, 'paid')).toBe('paid');
    const order = await apiStatusBecomes(id, 'paid');
    expect(order.history.map((h: { to: string }) => h.to)).toEqual(['payment_failed', 'paid']);
    // The page's history follows the API's.
    await page.waitForSelector('#history tr:nth-child(2)');
    expect(await page.locator('#history tr').count()).toBe(2);
  });

  it('refuses a card number that is not a test card without calling the PSP', async () => {
    const page = await context.newPage();
    const id = await buyWithCardForm(page);
    await payWithCard(page, '1234 5678 9012 3456');
    await page.waitForURL(/\/pay\?result=unknown_card$/);
    expect((await apiOrder(id)).status).toBe('pending_payment');
    expect((await stack.stripe.paymentIntents.retrieve((await apiOrder(id)).payment.id)).status).toBe('requires_payment_method');
  });

  it('3-D Secure: the card asks for authentication, the customer completes it, the order is paid', async () => {
    const page = await context.newPage();
    const id = await buyWithCardForm(page);
    await payWithCard(page, '4000002760003184');
    await page.waitForURL(new RegExp(`/shop/orders/${id}/authenticate$`));
    await apiStatusBecomes(id, 'requires_action');

    await page.getByRole('button', { name: 'Complete authentication' }).click();
    await page.waitForURL(new RegExp(`/shop/orders/${id}$`));
    expect(await badgeShows(page, 'paid')).toBe('paid');
    const order = await apiStatusBecomes(id, 'paid');
    expect(order.history.map((h: { to: string }) => h.to)).toEqual(['requires_action', 'paid']);
  });

  it('3-D Secure: a failed authentication leaves the order unpaid and the card form open', async () => {
    const page = await context.newPage();
    const id = await buyWithCardForm(page);
    await payWithCard(page, '4000002760003184');
    await page.waitForURL(new RegExp(`/shop/orders/${id}/authenticate$`));

    await page.getByRole('button', { name: 'Fail authentication' }).click();
    await page.waitForURL(/\/pay\?result=auth_failed$/);
    expect(await page.textContent('.notice')).toContain('authentication failed');
    const order = await apiStatusBecomes(id, 'payment_failed');
    expect(order.history.map((h: { to: string }) => h.to)).toEqual(['requires_action', 'payment_failed']);
    const intent = await stack.stripe.paymentIntents.retrieve(order.payment.id);
    expect(intent.status).toBe('requires_payment_method');

    await page.goto(`${stack.url}/shop/orders/${id}`);
    expect(await badgeShows(page, 'payment_failed')).toBe('payment failed');
    expect(await page.isVisible('#pay-actions')).toBe(true);
  });

  it('hosted page: 4242 4242 4242 4242 pays there and brings the customer back to the order page, which shows paid', async () => {
    const page = await context.newPage();
    const ids = await buyOnHostedPage(page, 3);
    const created = await apiOrder(ids.orderId);
    expect(created).toMatchObject({ status: 'pending_payment', amount: 3 * 1400, payment: { id: null, checkoutSessionId: ids.sessionId } });
    expect(page.url()).toBe(created.payment.checkoutUrl);

    await payOnHostedPage(page, '4242 4242 4242 4242');
    await backOnOrderPage(page, ids);
    expect(await page.textContent('.notice')).toContain('back from the payment page');
    expect(await badgeShows(page, 'paid')).toBe('paid');
    const order = await apiStatusBecomes(ids.orderId, 'paid');
    expect(order.payment).toMatchObject({ id: expect.stringMatching(/^pi_/), checkoutSessionId: ids.sessionId });
    expect(order.history.map((h: { to: string }) => h.to)).toEqual(['paid']);
    // A Checkout order is paid on the hosted page only: no card form of the shop's.
    expect(await page.isVisible('#pay-actions')).toBe(false);
  });

  it('hosted page: a bank redirect authorized there ends paid on the order page', async () => {
    const page = await context.newPage();
    const ids = await buyOnHostedPage(page);
    await page.getByRole('button', { name: 'Pay with bank redirect' }).click();
    await page.getByRole('button', { name: 'Authorize test payment' }).click();
    await backOnOrderPage(page, ids);
    expect(await badgeShows(page, 'paid')).toBe('paid');
    const order = await apiStatusBecomes(ids.orderId, 'paid');
    // processing first, unless the settlement was applied before it (then processing is stale).
    expect([['processing', 'paid'], ['paid']]).toContainEqual(order.history.map((h: { to: string }) => h.to));
  });

  it('hosted page: a bank redirect failed there ends payment_failed on the order page', async () => {
    const page = await context.newPage();
    const ids = await buyOnHostedPage(page);
    await page.getByRole('button', { name: 'Pay with bank redirect' }).click();
    await page.getByRole('button', { name: 'Fail test payment' }).click();
    await backOnOrderPage(page, ids);
    expect(await badgeShows(page, 'payment_failed')).toBe('payment failed');
    const order = await apiStatusBecomes(ids.orderId, 'payment_failed');
    expect(order.history.map((h: { to: string }) => h.to)).not.toContain('paid');
  });

  it('hosted page: Back returns to the shop with a notice, and nothing is charged', async () => {
    const page = await context.newPage();
    const ids = await buyOnHostedPage(page);
    await page.getByRole('link', { name: 'Back' }).click();
    await page.waitForURL(`${stack.url}/?notice=canceled`);
    expect(await page.textContent('.notice')).toContain('Payment canceled');
    expect(await page.locator('article.card').count()).toBeGreaterThanOrEqual(3);
    const order = await apiOrder(ids.orderId);
    expect(order).toMatchObject({ status: 'pending_payment', history: [] });
    expect(await stack.stripe.checkout.sessions.retrieve(ids.sessionId)).toMatchObject({ status: 'open', payment_status: 'unpaid' });
  });

  it('answers unknown orders with a 404 page, not the API\'s JSON', async () => {
    const res = await request(stack.url).get('/shop/orders/0b7c2a9e-5f1d-4c8e-9a7b-3d2e1f0a9b8c').expect(404);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.text).toContain('There is no such order');
  });
});

describe('demo storefront: an unpaid hosted checkout expires', () => {
  let stack: TestStack;
  let browser: Browser;

  beforeAll(async () => {
    // Unpaid orders expire after 3 s; the sweep that expires them (and their sessions at the PSP) runs every half second.
    stack = await startTestStack({ env: { DEMO_STOREFRONT: 'true', ORDER_PAYMENT_TIMEOUT_MINUTES: '0.05', RECONCILE_INTERVAL_MS: '500' } });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('ends the order expired, shown on its page, and the hosted page takes no payment any more', async () => {
    const context = await browser.newContext();
    const shop = await context.newPage();
    await shop.goto(`${stack.url}/shop/products/STICKERS-3`);
    await shop.getByLabel('Email').fill(EMAIL);
    await shop.getByRole('button', { name: 'Pay on hosted page' }).click();
    await shop.waitForURL((url) => url.origin === new URL(stack.mock.url).origin);
    const sessionId = /(cs_\w+)/.exec(shop.url())?.[1] as string;
    const orderId = (await stack.stripe.checkout.sessions.retrieve(sessionId)).client_reference_id as string;

    const orderPage = await context.newPage();
    await orderPage.goto(`${stack.url}/shop/orders/${orderId}`);
    await orderPage.waitForSelector('[data-testid=status][data-status="expired"]', { timeout: 30_000 });
    expect(await orderPage.textContent('#status-note')).toContain('expired');

    const order = (await request(stack.url).get(`/orders/${orderId}`).expect(200)).body;
    expect(order).toMatchObject({ status: 'expired', payment: { checkoutSessionId: sessionId } });
    expect(order.history.map((h: { to: string }) => h.to)).toEqual(['expired']);
    expect(await stack.stripe.checkout.sessions.retrieve(sessionId)).toMatchObject({ status: 'expired' });
    await shop.reload();
    expect(await shop.getByLabel('Card number', { exact: true }).count()).toBe(0);
    await context.close();
  });
});

describe('demo storefront switched off', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ env: { DEMO_STOREFRONT: 'false' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('serves no shop pages, and the API as before', async () => {
    await request(stack.url).get('/').expect(404);
    await request(stack.url).get('/shop/products/TEE-SETTLE').expect(404);
    await request(stack.url).get('/health').expect(200);
  });
});
