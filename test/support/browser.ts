/**
 * Debian's chromium driven by playwright-core, for the console tests. Whether it is there (or the
 * suite is skipped, or fails in CI) is decided by requireProgram in test/support/programs.ts.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { programPath, requireProgram } from './programs.js';

export const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));

/** The suite options for tests that need the browser: skipped with the package to install when it is missing. */
export function requireChromium(): { skip: string | false } {
  return requireProgram('chromium', 'chromium');
}

/**
 * Headless, no sandbox (root in a container), nothing phoning home, and a fresh temporary profile
 * (user data dir) for each launch, which playwright removes on close.
 */
export function launchChromium(): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: programPath('chromium'),
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
