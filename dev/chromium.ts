import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/**
 * Debian's Chromium (scripts/setup installs it), driven by playwright-core, for the page's browser
 * tests and the bench: never a browser build downloaded by Playwright.
 */

export const CHROMIUM = process.env.SPARKIFY_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Without these Chromium waits on services it cannot reach on a machine with a closed network
 * (component updates, sync, QUIC probes), and a sandbox needs privileges a container lacks.
 */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Chromium {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A fresh profile each time: nothing carries over between runs. */
export async function launchChromium(viewport = { width: 1300, height: 900 }): Promise<Chromium> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: scripts/setup installs Debian's chromium (apt-get install -y chromium), or set SPARKIFY_CHROMIUM to a Chromium binary`,
    );
  }
  const profile = mkdtempSync(join(tmpdir(), 'sparkify-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
