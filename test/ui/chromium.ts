import { existsSync, mkdirSync } from 'node:fs';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

/** The system's Chromium: $CHROMIUM_PATH, else Debian's (and Ubuntu's, Google's) usual paths. Nothing is downloaded. */
export function findChromium(): string | null {
  const candidates = [process.env['CHROMIUM_PATH'], '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome-stable', '/usr/bin/google-chrome'];
  return candidates.find((p): p is string => p !== undefined && p !== '' && existsSync(p)) ?? null;
}

/**
 * Why the browser tests are skipped, or false to run them. Under CI=true they
 * never skip: without a browser they fail (.ci/run installs Debian's chromium).
 */
export function browserSkipReason(): string | false {
  if (findChromium() !== null || process.env['CI'] === 'true') return false;
  return 'no Chromium found: install it (Debian: apt-get install chromium) or set CHROMIUM_PATH';
}

export async function launchChromium(): Promise<Browser> {
  const executablePath = findChromium();
  if (executablePath === null) throw new Error('no Chromium found (CI=true: .ci/run installs Debian\'s chromium; elsewhere: apt-get install chromium or set CHROMIUM_PATH)');
  return puppeteer.launch({
    executablePath,
    headless: true,
    timeout: 30_000,
    protocolTimeout: 60_000,
    // Root in CI has no user namespace sandbox; one renderer process, no GPU: a light browser on 2 shared cores.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-extensions', '--mute-audio'],
  });
}

/** Where the tests' screenshots go (ignored by git, kept by CI as artifacts if it likes). */
export function outputDir(): string {
  const dir = 'test-output';
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Everything a page complains about: console errors, uncaught exceptions, failed requests. */
export function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e instanceof Error ? e.message : String(e)}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  return problems;
}

/** The canvas's pixels as RGBA bytes. */
export async function canvasPixels(page: Page, selector: string): Promise<Buffer> {
  const b64 = await page.evaluate((sel: string) => {
    // Runs in the page (this project compiles without the DOM's types).
    const c = (globalThis as unknown as { document: { querySelector(s: string): any } }).document.querySelector(sel);
    const d: Uint8ClampedArray = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let s = '';
    for (let i = 0; i < d.length; i += 0x8000) s += String.fromCharCode(...d.subarray(i, i + 0x8000));
    return btoa(s);
  }, selector);
  return Buffer.from(b64, 'base64');
}
