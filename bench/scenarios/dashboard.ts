import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser } from 'puppeteer-core';
import { runMainJob } from '../../src/index.js';
import { startDashboard } from '../../src/ui/index.js';
import { findChromium, launchChromium } from '../../test/ui/chromium.js';
import { Child } from '../lib/children.js';
import { makeRow, type Row } from '../lib/result.js';
import { type Context, type Scenario } from '../lib/scenario.js';
import { repeat } from '../lib/stats.js';

const VIEWER_CHILD = fileURLToPath(new URL('../lib/viewer-child.js', import.meta.url));

type Config = 'off' | 'ui' | 'viewer';

interface Measured {
  /** Frames per second between the first and the last frame. */
  fps: number;
  /** CPU time of this process (driver, scene, embedded device, dashboard server) per frame. */
  cpuMs: number;
  /** Updates the attached viewer drew. */
  updates: number;
}

/**
 * Scenario 8: what `--ui` costs the main job. The main job as `npm start` runs
 * it (embedded device) but unpaced, so any work the dashboard adds shows as
 * fewer frames per second: without the dashboard (the baseline), with it and
 * no viewer, and with one browser attached (headless Chromium when installed,
 * else a viewer in another Node process). The three run interleaved, so a
 * change in the machine's load hits all of them alike.
 */
export const dashboard: Scenario = {
  id: '8',
  title: 'Dashboard overhead',
  async run(ctx: Context): Promise<Row[]> {
    // 360 frames: two cycles of the scene's phases, a few seconds, several framebuffer reads per run.
    const frames = ctx.quick ? 60 : 360;
    // No DevTools client stays attached while a run is measured: an attached client is sent
    // every WebSocket frame the page receives, a cost no user's browser pays.
    const launched = findChromium() !== null ? await launchChromium() : null;
    const browser = launched === null ? null : { wsEndpoint: launched.wsEndpoint() };
    await launched?.disconnect();
    const viewerName = browser !== null ? 'Chromium' : 'a Node viewer process (no Chromium found)';
    try {
      const runs = await repeat(ctx.warmup, ctx.runs, async (i) => {
        const out = {} as Record<Config, Measured>;
        for (const config of ['off', 'ui', 'viewer'] as const) {
          ctx.log(`  8: ${config}${i < 0 ? ' (warm-up)' : ''}`);
          out[config] = await measure(config, frames, browser);
        }
        return out;
      });
      const of = (c: Config, f: (m: Measured) => number) => runs.map((r) => f(r[c]));
      const baseline = (f: (m: Measured) => number) => ({ name: 'no dashboard', samples: of('off', f) });
      const fps = (m: Measured) => m.fps;
      const cpu = (m: Measured) => m.cpuMs;
      const viewerLabel = browser !== null ? 'Chromium' : 'a Node viewer';
      return [
        makeRow('8', 'main job, no dashboard', { unit: 'frames/s', samples: of('off', fps), note: `${frames} frames unpaced, embedded device; viewer: ${viewerName}; CPU = this process (driver, scene, device, dashboard), the viewer runs elsewhere` }),
        makeRow('8', 'main job --ui, no viewer', { unit: 'frames/s', samples: of('ui', fps), baseline: baseline(fps) }),
        makeRow('8', `main job --ui, ${viewerLabel} attached`, { unit: 'frames/s', samples: of('viewer', fps), baseline: baseline(fps) }),
        makeRow('8', 'CPU, no dashboard', { unit: 'ms/frame', samples: of('off', cpu) }),
        makeRow('8', 'CPU --ui, no viewer', { unit: 'ms/frame', samples: of('ui', cpu), baseline: baseline(cpu) }),
        makeRow('8', `CPU --ui, ${viewerLabel} attached`, { unit: 'ms/frame', samples: of('viewer', cpu), baseline: baseline(cpu) }),
        makeRow('8', `updates drawn by ${viewerLabel}`, { unit: 'updates/run', samples: of('viewer', (m) => m.updates) }),
      ];
    } finally {
      if (browser !== null) await (await puppeteer.connect({ browserWSEndpoint: browser.wsEndpoint })).close().catch(() => launched?.process()?.kill('SIGKILL'));
    }
  },
};

async function measure(config: Config, frames: number, browser: { wsEndpoint: string } | null): Promise<Measured> {
  const dash = config === 'off' ? null : await startDashboard({ port: 0 });
  let updates = (): Promise<number> => Promise.resolve(0);
  let detach = (): Promise<void> => Promise.resolve();
  try {
    if (dash !== null && config === 'viewer') {
      if (browser !== null) {
        const endpoint = browser.wsEndpoint;
        const attached: Browser = await puppeteer.connect({ browserWSEndpoint: endpoint });
        const page = await attached.newPage();
        await page.setViewport({ width: 1400, height: 1000 });
        await page.goto(dash.url, { waitUntil: 'load', timeout: 30_000 });
        type Live = { vgpuDashboard?: { state: { connected: boolean; updates: number } } };
        await page.waitForFunction(() => (globalThis as unknown as Live).vgpuDashboard?.state.connected === true, { timeout: 30_000 });
        await attached.disconnect();
        updates = async () => {
          const b = await puppeteer.connect({ browserWSEndpoint: endpoint });
          const p = (await b.pages()).find((x) => x.url() === dash.url);
          if (p === undefined) throw new Error('the dashboard page is gone');
          const n = await p.evaluate(() => (globalThis as unknown as Live).vgpuDashboard!.state.updates);
          await p.close();
          await b.disconnect();
          return n;
        };
      } else {
        const child = new Child('viewer', VIEWER_CHILD, [dash.url]);
        await child.waitFor('connected');
        updates = async () => {
          child.proc.kill('SIGTERM');
          const line = await child.waitFor('updates ');
          return Number(line.split(' ')[0]);
        };
        detach = () => child.close();
      }
    }
    let first = 0;
    let last = 0;
    const cpu0 = process.cpuUsage();
    await runMainJob({
      frames, hz: 0, verifyEvery: 0, observer: dash?.sampler,
      onFrame: (f) => {
        last = performance.now();
        if (f === 1) first = last;
      },
    });
    const cpu = process.cpuUsage(cpu0);
    const drawn = await updates();
    if (config === 'viewer' && drawn === 0) throw new Error('the viewer drew no update: nothing was measured');
    return { fps: ((frames - 1) * 1000) / (last - first), cpuMs: (cpu.user + cpu.system) / 1000 / frames, updates: drawn };
  } finally {
    await detach();
    await dash?.close();
  }
}
