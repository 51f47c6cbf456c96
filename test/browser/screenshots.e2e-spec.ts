import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { startTestStack, TestStack } from '../support/test-app';
import { launchBrowser } from '../support/browser';

/**
 * Saves docs/storefront.png and docs/order-page.png for the README:
 * `SAVE_SCREENSHOTS=1 SKIP_BUILD=1 npx jest test/browser/screenshots.e2e-spec.ts`.
 * Skipped otherwise (it checks nothing the storefront suite does not).
 */
const saving = process.env.SAVE_SCREENSHOTS === '1' ? describe : describe.skip;
const DOCS = join(__dirname, '..', '..', 'docs');

saving('storefront screenshots', () => {
  let stack: TestStack;
  let browser: Browser;

  beforeAll(async () => {
    stack = await startTestStack({ env: { DEMO_STOREFRONT: 'true' } });
    browser = await launchBrowser();
    mkdirSync(DOCS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('saves the front page and a paid order with its history', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
    await page.goto(`${stack.url}/`);
    await page.screenshot({ path: join(DOCS, 'storefront.png') });

    await page.locator('article.card').first().getByRole('link', { name: 'Buy' }).click();
    await page.getByLabel('Quantity').fill('2');
    await page.getByLabel('Email').fill('ada@example.com');
    await page.getByRole('button', { name: 'Pay by card here' }).click();
    await page.getByLabel('Card number').fill('4000 0000 0000 0002');
    await page.getByRole('button', { name: 'Pay', exact: true }).click();
    await page.waitForURL(/result=declined/);
    await page.getByLabel('Card number').fill('4242 4242 4242 4242');
    await page.getByRole('button', { name: 'Pay', exact: true }).click();
    await page.waitForSelector('[data-testid=status][data-status=paid]', { timeout: 20_000 });
    await page.waitForSelector('#history tr:nth-child(2)');
    await page.screenshot({ path: join(DOCS, 'order-page.png'), fullPage: true });
  });
});
