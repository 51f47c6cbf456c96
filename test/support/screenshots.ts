import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Browser } from 'playwright-core';
import Stripe from 'stripe';
import { MockPsp } from '../../src/mock-psp';
import { launchBrowser } from './browser';

/** Where the README's picture of the hosted payment page lives. */
export const PAYMENT_PAGE_PNG = join(__dirname, '..', '..', 'docs', 'payment-page.png');

/**
 * Saves a PNG of the mock's hosted payment page, for the README: a mock of its
 * own, a session with two line items, the page as a customer first sees it.
 * Run with `npx ts-node test/support/screenshots.ts`, or
 * `SAVE_SCREENSHOTS=1 npx jest test/mock-psp/checkout-page.e2e-spec.ts`.
 */
export async function savePaymentPageScreenshot(browser: Browser, file = PAYMENT_PAGE_PNG): Promise<string> {
  const mock = await MockPsp.start({ port: 0 });
  try {
    const stripe = new Stripe('sk_test_screenshots', { host: '127.0.0.1', port: mock.port, protocol: 'http', telemetry: false, maxNetworkRetries: 0 });
    const session = await stripe.checkout.sessions.create({
      mode: 'payment',
      line_items: [
        { price_data: { currency: 'eur', unit_amount: 1450, product_data: { name: 'Ceramic mug' } }, quantity: 2 },
        { price_data: { currency: 'eur', unit_amount: 600, product_data: { name: 'Gift wrap' } }, quantity: 1 },
      ],
      success_url: 'https://shop.example/thanks?session_id={CHECKOUT_SESSION_ID}',
      cancel_url: 'https://shop.example/cart',
    });
    const context = await browser.newContext({ viewport: { width: 760, height: 760 }, deviceScaleFactor: 1 });
    try {
      const page = await context.newPage();
      await page.goto(session.url as string);
      await page.getByText('Test cards').click();
      mkdirSync(dirname(file), { recursive: true });
      await page.screenshot({ path: file, fullPage: true });
    } finally {
      await context.close();
    }
    return file;
  } finally {
    await mock.stop();
  }
}

if (require.main === module) {
  void (async () => {
    const browser = await launchBrowser();
    try {
      console.log(`saved ${await savePaymentPageScreenshot(browser)}`);
    } finally {
      await browser.close();
    }
  })().catch((err: Error) => {
    console.error(err.message);
    process.exit(1);
  });
}
