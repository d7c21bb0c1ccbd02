import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'puppeteer-core';
import { startDevice, type Device } from '../../device/index.js';
import { type Bo, type BoDirtyTracker, BufferResource, type MainJobObserver, type MainJobView, PTE_DIRTY, runMainJob, SurfaceResource } from '../../src/index.js';
import { type Dashboard, FrameSampler, renderReport, startDashboard } from '../../src/ui/index.js';
import { until } from '../driver/fixtures.js';
import { browserSkipReason, canvasPixels, launchChromium, outputDir, watchProblems } from './chromium.js';

// Each test drives a short real run (60 frames at 60 Hz) and a headless Chromium;
// every wait below is bounded, so a hang fails the test instead of stalling CI.
const skip = browserSkipReason();
let browser: Browser | null = null;
/** The sampler of the live run, kept for the report test. */
let finished: FrameSampler | null = null;

before(async () => {
  if (skip === false) browser = await launchChromium();
});
after(async () => {
  await browser?.close();
});

type Counts = { clean: number; dirty: number; sending: number; deviceNewer: number };
// The page's own objects (this project compiles without the DOM's types). Functions passed to
// page.evaluate run in the page, so each names them through globalThis itself.
type PageGlobals = { vgpuDashboard: { state: { connected: boolean; updates: number; seq: number; rows: number; imageVersion: number; ended: boolean; errors: string[] }; views: PageViews } };
type PageViews = { counts(i: number): Counts | null; chartPoints(): Array<{ title: string; series: number[] }> };

/** The pages a CPU wrote since the last scan, found without the dashboard's code: tracker bitmap, and under PAGETABLE each PTE's D bit. */
function trackerDirty(bo: Bo): Set<number> {
  const out = new Set<number>();
  const t = bo.tracker as BoDirtyTracker; // the main job's default strategy (adaptive)
  for (let p = 0; p < bo.pages; p++) if (t.bitmap.test(p)) out.add(p);
  if (t.method === 'pagetable') {
    for (const vma of bo.mapping.vmasIntersecting(bo.offset, bo.pages)) {
      const ps = vma.mm.pageSize;
      for (let pg = Math.max(vma.pgoff, bo.offset); pg < Math.min(vma.pgoffEnd, bo.offset + bo.pages); pg++) {
        if (vma.mm.pageTable.get(vma.addressOf(pg) / ps) & PTE_DIRTY) out.add(pg - bo.offset);
      }
    }
  }
  return out;
}

/** Pages whose dirty state a failed round left in the BO's resources (the driver sends them with a later flush). */
function parkedDirty(bo: Bo): Set<number> {
  const out = new Set<number>();
  const ps = bo.space.pageSize;
  const bytes = (s: number, e: number) => {
    for (let p = Math.floor(s / ps); p < Math.ceil(e / ps); p++) out.add(p);
  };
  for (const res of bo.resources) {
    if (res instanceof BufferResource) for (const [s, e] of res.dirtyRanges()) bytes(s, e);
    if (res instanceof SurfaceResource) {
      for (const b of res.dirtyBoxes()) {
        for (let y = b.y; y < b.y + b.h; y++) bytes(res.offset + y * res.rowPitch + b.x * res.bytesPerPixel, res.offset + y * res.rowPitch + (b.x + b.w) * res.bytesPerPixel);
      }
    }
  }
  return out;
}

/** What the page map must show at a pause in which every flush so far has settled. */
function expectedCounts(bo: Bo): Counts {
  const dirty = new Set([...trackerDirty(bo), ...parkedDirty(bo)]);
  const newer = bo.deviceNewer.count();
  let dirtyOnly = 0;
  for (const p of dirty) if (!bo.deviceNewer.test(p)) dirtyOnly++;
  return { clean: bo.pages - newer - dirtyOnly, dirty: dirtyOnly, sending: 0, deviceNewer: newer };
}

/** Canvas RGBA against the device's B8G8R8X8 bytes: the number of differing pixels and the first one. */
function comparePixels(rgba: Buffer, device: Uint8Array, width: number): { differing: number; first: string } {
  let differing = 0;
  let first = '';
  for (let i = 0; i * 4 < device.length; i++) {
    const [r, g, b, a] = [rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2], rgba[4 * i + 3]];
    if (r !== device[4 * i + 2] || g !== device[4 * i + 1] || b !== device[4 * i] || a !== 255) {
      if (differing++ === 0) first = `pixel (${i % width}, ${Math.floor(i / width)}): canvas ${[r, g, b, a]}, device ${Array.from(device.subarray(4 * i, 4 * i + 4))}`;
    }
  }
  return { differing, first };
}

/** Send the page an update now (the device's framebuffer read afresh) and wait until it has drawn that update. */
async function publishAndWait(page: Page, dashboard: Dashboard): Promise<void> {
  const { seq, viewers } = await dashboard.publish();
  assert.equal(viewers, 1, 'the page took the update');
  await page.waitForFunction((n: number) => (globalThis as unknown as PageGlobals).vgpuDashboard.state.seq >= n, { timeout: 15_000, polling: 20 }, seq);
}

async function liveRun(kind: 'embedded' | 'external'): Promise<void> {
  const external: Device | null = kind === 'external' ? await startDevice({ port: 0, controlToken: 'ctl' }) : null;
  const dashboard = await startDashboard({ port: 0 });
  const page = await browser!.newPage();
  const problems = watchProblems(page);
  try {
    await page.setViewport({ width: 1400, height: 1000 });
    await page.goto(dashboard.url, { waitUntil: 'load', timeout: 15_000 });
    await page.waitForFunction(() => (globalThis as unknown as Partial<PageGlobals>).vgpuDashboard?.state.connected === true, { timeout: 15_000, polling: 20 });
    // Frame 30: the device draws its box (every 20 frames, at 10, 30, 50); the flush of frame 29
    // is awaited first, so no round scans while frame 30 is drawn and the tracker holds exactly
    // its pages. (A flush may fail on a loaded machine, "pages still waiting for their readback":
    // the driver keeps their dirty state in the resources and repairs it later; that is shown too.)
    const PAUSE = 30;
    let job: MainJobView | null = null;
    const deviceCopy = (): Uint8Array => {
      const j = job!;
      return (external ?? j.device)!.session(j.driver.conn.welcome!.session)!.bo(j.fb.bo.id)!;
    };
    let finalCopy: Uint8Array | null = null;
    let paused = false;
    const s = dashboard.sampler;
    const observer: MainJobObserver = {
      start: (j) => {
        job = j;
        s.start(j);
      },
      flush: async (f, p) => {
        s.flush(f, p);
        if (f === PAUSE - 1) await p.catch(() => {});
      },
      frame: async (f, w) => {
        s.frame(f, w);
        if (f !== PAUSE) return;
        paused = true;
        const { fb, vb } = job!;
        await until(() => fb.bo.deviceNewer.count() > 0, 'the announcement of the device\'s own write', 5000);
        assert.equal(trackerDirty(fb.bo).size, w.fbPages, 'the tracker holds exactly the pages the scene wrote');
        assert.equal(trackerDirty(vb).size, w.vbPages);
        const expected = [expectedCounts(fb.bo), expectedCounts(vb)];
        await publishAndWait(page, dashboard);
        // The canvas is the device's copy at this fence, pixel for pixel...
        const copy = deviceCopy();
        const pixels = await canvasPixels(page, '#fb');
        const cmp = comparePixels(pixels, copy, fb.width);
        assert.equal(cmp.differing, 0, `canvas differs from the device's framebuffer: ${cmp.first}`);
        // ...which is not guest memory: the CPUs' writes of this frame are not flushed yet.
        const guest = new Uint8Array(fb.bo.size);
        fb.bo.copyOut(0, guest, 0, fb.bo.size);
        assert.ok(comparePixels(pixels, guest, fb.width).differing > 0, 'guest memory differs from the device copy at this point');
        // The page map shows the tracker's state.
        const shown = await page.evaluate(() => [(globalThis as unknown as PageGlobals).vgpuDashboard.views.counts(0), (globalThis as unknown as PageGlobals).vgpuDashboard.views.counts(1)]);
        assert.deepEqual(shown, expected);
        assert.ok(expected[0]!.dirty > 0 && expected[0]!.deviceNewer > 0, 'a pause with dirty and device-newer pages');
        // The charts hold every row so far (frames 0..29; each chart has a series without gaps,
        // a failed flush, which the driver repairs by itself, only leaves a gap in the latency of that flush).
        const charts = await page.evaluate(() => (globalThis as unknown as PageGlobals).vgpuDashboard.views.chartPoints());
        assert.equal(charts.length, 5);
        for (const c of charts) assert.equal(Math.max(...c.series), PAUSE, `${c.title}: ${c.series.join(', ')} points`);
      },
      verified: (v) => s.verified(v),
      end: async (r) => {
        await s.end(r);
        finalCopy = deviceCopy();
      },
    };
    const report = await runMainJob({ deviceUrl: external?.url, control: external !== null, controlToken: 'ctl', frames: 60, hz: 60, verifyEvery: 30, gpuEvery: 20, observer });
    assert.ok(paused, 'the run reached the pause');
    assert.equal(report.coherent, true);
    // The final state: the last framebuffer, every row, the run's summary.
    await page.waitForFunction(() => (globalThis as unknown as PageGlobals).vgpuDashboard.state.ended, { timeout: 15_000, polling: 20 });
    const cmp = comparePixels(await canvasPixels(page, '#fb'), finalCopy!, job!.fb.width);
    assert.equal(cmp.differing, 0, `final canvas differs: ${cmp.first}`);
    assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).vgpuDashboard.state.rows), 60);
    assert.deepEqual(await page.evaluate(() => (globalThis as unknown as PageGlobals).vgpuDashboard.state.errors), []);
    await page.screenshot({ path: join(outputDir(), `dashboard-${kind}.png`), fullPage: true });
    assert.deepEqual(problems, [], 'no console errors, page errors or failed requests');
    finished = s;
  } finally {
    await page.close();
    await dashboard.close();
    await external?.close();
  }
}

test('live dashboard, embedded device, in Chromium: canvas = the device\'s framebuffer at a fence, page map = the tracker, charts fed, no errors', { skip }, () => liveRun('embedded'));

test('live dashboard, external device (--device, --control), in Chromium: the same, read over the driver\'s connection', { skip }, () => liveRun('external'));

test('the report opens from a file in Chromium, offline: everything renders, nothing is requested, no errors', { skip }, async () => {
  assert.ok(finished !== null, 'the live run before produced a sampler');
  const file = resolve(outputDir(), 'report.html');
  writeFileSync(file, renderReport(finished));
  const url = pathToFileURL(file).href;
  const page = await browser!.newPage();
  const problems = watchProblems(page);
  const fetched: string[] = [];
  try {
    await page.setRequestInterception(true);
    page.on('request', (r) => {
      if (r.url() === url || r.url().startsWith('data:')) return void r.continue();
      fetched.push(r.url());
      void r.abort();
    });
    await page.setViewport({ width: 1400, height: 1000 });
    await page.goto(url, { waitUntil: 'load', timeout: 15_000 });
    type Report = { vgpuReport?: { rows: number; views: PageViews } };
    await page.waitForFunction(() => (globalThis as unknown as Report).vgpuReport !== undefined, { timeout: 15_000, polling: 20 });
    const r = await page.evaluate(() => {
      const v = (globalThis as unknown as Report).vgpuReport!;
      return { rows: v.rows, charts: v.views.chartPoints(), maps: [v.views.counts(0), v.views.counts(1)] };
    });
    assert.equal(r.rows, 60);
    assert.equal(r.charts.length, 5);
    for (const c of r.charts) assert.equal(Math.max(...c.series), 60, c.title);
    assert.deepEqual(r.maps, [{ clean: 2025, dirty: 0, sending: 0, deviceNewer: 0 }, { clean: 1024, dirty: 0, sending: 0, deviceNewer: 0 }]);
    await page.screenshot({ path: join(outputDir(), 'report.png'), fullPage: true });
    assert.deepEqual(fetched, [], 'the report fetches nothing');
    assert.deepEqual(problems, [], 'no console errors, page errors or failed requests');
  } finally {
    await page.close();
  }
});
