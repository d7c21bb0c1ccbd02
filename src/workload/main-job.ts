import { startDevice, type Device } from '../../device/index.js';
import { Machine } from '../core/index.js';
import { type DirtyConfig } from '../driver/config.js';
import { Driver } from '../driver/driver.js';
import type { FlushResult, WritebackOptions } from '../driver/writeback.js';
import { Scene } from './scene.js';

export type Strategy = 'adaptive' | 'pagetable' | 'mkwrite' | 'full';
export const STRATEGIES: readonly Strategy[] = ['adaptive', 'pagetable', 'mkwrite', 'full'];

export interface MainJobOptions {
  /** Use this device instead of starting one in-process. */
  deviceUrl?: string;
  token?: string;
  frames?: number;
  /** Frames per second of the sync loop (default 60); 0 runs unpaced, as fast as possible. */
  hz?: number;
  cpus?: number;
  strategy?: Strategy;
  /** Verify coherence every N frames (default 60) and at the end. */
  verifyEvery?: number;
  writeback?: WritebackOptions;
  /** Emulated link of the embedded device. */
  bandwidth?: number;
  fenceLatency?: number;
  seed?: number;
  onFrame?: (frame: number, frames: number) => void;
  /** Called with the driver once it is connected (for instrumentation). */
  onDriver?: (driver: Driver) => void;
  log?: (line: string) => void;
}

/** The summary of a run; the first keys are the documented `--json` output. */
export interface MainJobReport {
  frames: number;
  pagesDirtied: number;
  pagesSent: number;
  bytesOnWire: number;
  fences: number;
  fenceLatencyMs: { p50: number; p99: number };
  methodSwitches: number;
  faults: number;
  tlbFlushes: number;
  ipis: number;
  coherent: boolean;
  strategy: Strategy;
  seconds: number;
  flushErrors: number;
  differingPages: number;
  /** Wall milliseconds per frame the writeback spent scanning trackers (the snapshot step). */
  scanMsPerFrame: number;
}

export const FB = { width: 1920, height: 1080, bpp: 4 };
export const VB_BYTES = 4 << 20;

function dirtyConfigFor(strategy: Strategy): Partial<DirtyConfig> {
  switch (strategy) {
    case 'pagetable':
      return { mkwriteThresholdPages: Infinity, changeTriggers: Infinity };
    case 'mkwrite':
      return { mkwriteThresholdPages: 0, changeTriggers: Infinity };
    default:
      return {};
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * The main job: a 1920×1080×4 framebuffer surface and a 4 MiB vertex buffer,
 * mapped into two processes, drawn by several CPUs (Scene), synced every
 * frame, checked for coherence every `verifyEvery` frames and at the end.
 */
export async function runMainJob(opts: MainJobOptions = {}): Promise<MainJobReport> {
  const frames = opts.frames ?? 360;
  const hz = opts.hz ?? 60;
  const strategy = opts.strategy ?? 'adaptive';
  const verifyEvery = opts.verifyEvery ?? 60;
  const t0 = performance.now();
  let device: Device | null = null;
  const url = opts.deviceUrl ?? (device = await startDevice({ port: 0, bandwidth: opts.bandwidth, fenceLatency: opts.fenceLatency })).url;
  const fbBytes = FB.width * FB.height * FB.bpp;
  const machine = new Machine({ cpus: opts.cpus ?? 4, memoryBytes: 2 * (fbBytes + VB_BYTES) + (8 << 20) });
  const driver = await Driver.connect({ machine, url, token: opts.token, dirty: dirtyConfigFor(strategy), writeback: opts.writeback, log: opts.log });
  try {
    opts.onDriver?.(driver);
    const tracked = strategy !== 'full';
    const fbBo = driver.createBo(fbBytes, { tracked });
    driver.createSurface(fbBo, 0, { width: FB.width, height: FB.height, depth: 1, bytesPerPixel: FB.bpp });
    const vbBo = driver.createBo(VB_BYTES, { tracked });
    driver.createBufferResource(vbBo);
    const display = machine.createMm();
    const app = machine.createMm();
    const fbVma = driver.mmap(display, fbBo);
    driver.mmap(app, fbBo); // a second mapping of the framebuffer: trackers walk both
    const vbVma = driver.mmap(app, vbBo);
    const scene = new Scene({
      fb: { mm: display, vma: fbVma, width: FB.width, height: FB.height, pitch: FB.width * FB.bpp },
      vb: { mm: app, vma: vbVma, bytes: VB_BYTES },
      cpus: machine.cpus,
      pageSize: machine.pageSize,
    }, opts.seed ?? 1);

    const latencies: number[] = [];
    let pagesDirtied = 0;
    let flushErrors = 0;
    let differingPages = 0;
    let coherent = true;
    const pending = new Set<Promise<unknown>>();
    const track = (p: Promise<FlushResult>) => {
      const q = p.then((r) => void latencies.push(r.latencyMs), (e: Error) => {
        flushErrors++;
        opts.log?.(`flush failed: ${e.message}`);
      });
      pending.add(q);
      void q.finally(() => pending.delete(q));
    };
    const verify = async () => {
      await Promise.all(pending);
      for (const bo of [fbBo, vbBo]) {
        const r = await driver.verifyCoherent(bo);
        if (!r.ok) {
          coherent = false;
          differingPages += r.differing.length;
        }
      }
    };
    const start = performance.now();
    for (let f = 0; f < frames; f++) {
      const w = scene.frame(f);
      pagesDirtied += w.fbPages + w.vbPages;
      if (strategy === 'full') for (const bo of [fbBo, vbBo]) for (const r of bo.resources) r.markAllDirty();
      track(driver.flush());
      opts.onFrame?.(f + 1, frames);
      if (verifyEvery > 0 && (f + 1) % verifyEvery === 0) await verify();
      if (hz > 0) {
        const wait = start + ((f + 1) * 1000) / hz - performance.now();
        await new Promise((r) => setTimeout(r, Math.max(0, wait)));
      } else if (pending.size > 4) {
        await Promise.race(pending);
      }
    }
    await verify();
    latencies.sort((a, b) => a - b);
    const cpus = machine.cpus;
    const sum = (f: (c: (typeof cpus)[number]) => number) => cpus.reduce((a, c) => a + f(c), 0);
    return {
      frames,
      pagesDirtied,
      pagesSent: driver.writeback.stats.pagesTransferred,
      bytesOnWire: driver.conn.bytesSent,
      fences: latencies.length,
      fenceLatencyMs: { p50: round(percentile(latencies, 50)), p99: round(percentile(latencies, 99)) },
      methodSwitches: driver.writeback.stats.methodSwitches,
      faults: sum((c) => Object.values(c.counters.faults).reduce((a, b) => a + b, 0)),
      tlbFlushes: machine.counters.tlbFlushes,
      ipis: machine.counters.ipis,
      coherent: coherent && flushErrors === 0,
      strategy,
      seconds: round((performance.now() - t0) / 1000),
      flushErrors,
      differingPages,
      scanMsPerFrame: round(driver.writeback.stats.scanMs / frames),
    };
  } finally {
    await driver.close();
    await device?.close();
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
