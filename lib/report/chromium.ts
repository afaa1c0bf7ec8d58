/**
 * Headless Chromium (Debian's `chromium` package) driven by playwright-core, for the figure
 * export, the PDF report and the browser test. One place for the executable and its flags.
 *
 * The flags keep Chromium quiet on a machine without network: without the background-networking
 * ones it keeps trying to reach Google services. Playwright gives every launch a fresh temporary
 * profile (user-data-dir) and removes it on close.
 */
import * as fs from 'fs';
import type { Browser } from 'playwright-core';
import { readEnv } from '../config';

/** DCF_CHROMIUM overrides the executable (e.g. another build of Chromium or Chrome); readEnv().chromium. */
function chromiumPath(): string {
  return readEnv().chromium;
}

const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-extensions',
  '--mute-audio',
];

/** Launches headless Chromium; a clear error when it is not installed. */
export async function launchChromium(): Promise<Browser> {
  const executable = chromiumPath();
  if (!fs.existsSync(executable)) {
    throw new Error(
      `Chromium not found at ${executable}: figures and the PDF report are drawn by headless Chromium. ` +
        'Install it with `npm run setup` (Debian: apt-get install chromium), or point DCF_CHROMIUM at a Chromium executable.',
    );
  }
  // Required lazily: notebooks that only display figures never load playwright.
  const { chromium } = require('playwright-core') as typeof import('playwright-core');
  return chromium.launch({ executablePath: executable, headless: true, args: [...CHROMIUM_ARGS] });
}
