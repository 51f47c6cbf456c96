import { existsSync } from 'node:fs';
import { Browser, chromium } from 'playwright-core';

/**
 * The browser the page tests drive: Debian's Chromium (or CHROMIUM_PATH),
 * through playwright-core, which downloads no browser of its own. A missing
 * binary is an error, never a silent skip: the tests would prove nothing.
 */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    throw new Error(
      `Chromium not found at ${executablePath}. The browser tests need it: install it with \`apt-get install -y chromium\` ` +
        '(Debian/Ubuntu; .ci/run does this), or set CHROMIUM_PATH to a Chromium or Chrome binary.',
    );
  }
  // --no-sandbox: CI and containers run as root, where Chromium's sandbox cannot start.
  return chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
}
