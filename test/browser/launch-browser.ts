import { Browser, chromium } from 'playwright-core';

/**
 * Debian's Chromium (apt-get install -y chromium) driven by playwright-core;
 * Playwright's own browser downloads are not used. CHROMIUM_PATH points
 * elsewhere. --no-sandbox: the tests may run as root, where Chromium's
 * sandbox refuses to start.
 */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
}
