/**
 * Debian's chromium driven by playwright-core. Missing outside CI: the test is skipped with the
 * package to install; in CI (CI=true) a missing browser is a failure, never a skip.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));

/** A reason to skip, or undefined when the browser is there (or CI insists on it). */
export function browserMissing(): string | undefined {
  if (existsSync(CHROMIUM) || process.env.CI === 'true') return undefined;
  return `${CHROMIUM} is missing: install the Debian package chromium (apt-get install chromium)`;
}

/** Headless, no sandbox (root in a container), nothing phoning home; a fresh temporary profile each launch. */
export function launchChromium(): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
