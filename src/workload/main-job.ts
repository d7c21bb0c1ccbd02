import { startDevice, type Device } from '../../device/index.js';
import { Machine, requireInteger } from '../core/index.js';
import type { Bo } from '../driver/bo.js';
import { type BoStore, RealBoStore } from '../driver/bo-store.js';
import { Driver } from '../driver/driver.js';
import { BUILTIN_STRATEGY_NAMES, type BuiltinStrategyName } from '../driver/strategies/builtin.js';
import type { DirtyStrategy } from '../driver/strategies/contract.js';
import { resolveStrategy, StrategyError, strategyMachineOptions } from '../driver/strategies/loader.js';
import type { FlushResult, WritebackOptions } from '../driver/writeback.js';
import { LinuxWpMemory, probeLinuxWp, NativeUnavailableError } from '../native/linux-memory.js';
import { controlWriter, GpuActor, inProcessWriter } from './gpu-actor.js';
import { Scene } from './scene.js';
import { bothObservers, tappedWriter, type WorkloadTap } from './tap.js';
import { percentile } from './stats.js';

/** The built-in strategies' names (a user's strategy is a module path or a DirtyStrategy). */
export type Strategy = BuiltinStrategyName;
export const STRATEGIES: readonly Strategy[] = BUILTIN_STRATEGY_NAMES;

/** Where the main job's BOs live: the simulated machine's memory, or real memory tracked by the running kernel. */
export type MemoryKind = 'simulated' | 'real';

export interface MainJobOptions {
  /** Use this device instead of starting one in-process. */
  deviceUrl?: string;
  token?: string;
  /** Give up connecting to the device after this many ms (default 10000). */
  connectTimeoutMs?: number;
  /**
   * The device at deviceUrl accepts role 'control' connections: the GPU actor
   * writes through one, authenticated with controlToken. Without it, an
   * external device gets no device-side writes.
   */
  control?: boolean;
  controlToken?: string;
  /** The device renders into the framebuffer every N frames (default 20; 0 never). */
  gpuEvery?: number;
  /** Frames to run (default 360); 0 runs until `signal` aborts. */
  frames?: number;
  /** Ends the run after the current frame; the final verification and the report follow as usual. */
  signal?: AbortSignal;
  /** Frames per second of the sync loop (default 60); 0 runs unpaced, as fast as possible. */
  hz?: number;
  cpus?: number;
  /** A built-in name, a module path (resolveStrategy) or a DirtyStrategy; default 'adaptive'. */
  strategy?: string | DirtyStrategy;
  /**
   * 'real': the BOs are memfd shared memory of this process, the scene's
   * writes are JS stores into it, tracked by the running kernel's async
   * uffd-wp + PAGEMAP_SCAN (needs Linux 6.7+, userfaultfd and the optional
   * koffi package; NativeUnavailableError says which is missing). Strategies
   * that can track real memory: uffd-wp, full. Default 'simulated'.
   */
  memory?: MemoryKind;
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
  /** Sees the run as it goes (the dashboard, the report). */
  observer?: MainJobObserver;
  log?: (line: string) => void;
  /** Sees every write of the workload, as a trace recorder does (src/workload/tap.ts). */
  tap?: WorkloadTap;
  /** Framebuffer size in pixels (default 1920×1080; at least 640×360). */
  fb?: { width: number; height: number };
}

/** What an observer of the main job can look at: live objects, read them, do not drive them. */
export interface MainJobView {
  driver: Driver;
  machine: Machine;
  /** The embedded device, or null with deviceUrl. */
  device: Device | null;
  fb: { bo: Bo; width: number; height: number; bytesPerPixel: number; pitch: number };
  vb: Bo;
  /** The run's settings after defaults. */
  settings: {
    frames: number; hz: number; cpus: number; strategy: string; memory: MemoryKind; gpuEvery: number; verifyEvery: number;
    seed: number; device: string; deviceWrites: boolean; windowBatches: number;
  };
}

/**
 * Hooks called at fixed points of the run. A hook that returns a promise
 * makes the job wait for it (tests pause the run at a known point that way);
 * an observer that must not slow the run returns nothing.
 */
export interface MainJobObserver {
  /** The BOs exist, mapped; no frame has run. */
  start?(job: MainJobView): void | Promise<void>;
  /** Frame f is drawn (and the device's own write of frame f made); its flush has not started. */
  frame?(f: number, written: { fbPages: number; vbPages: number }): void | Promise<void>;
  /** The flush of frame f started; `result` settles when the device applied it (or it failed). */
  flush?(f: number, result: Promise<FlushResult>): void | Promise<void>;
  /** A coherence verification after frame `frames` ended (`ok` for this verification alone). */
  verified?(v: { frames: number; ok: boolean; differingPages: number }): void;
  /** The final verification is done and the report made; the driver and the device still live. */
  end?(report: MainJobReport): void | Promise<void>;
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
  /** The device copy equalled guest memory at every verification (digests compared; flush errors aside). */
  coherent: boolean;
  strategy: string;
  memory: MemoryKind;
  seconds: number;
  /** Flushes that rejected (device faults, lost sessions); reported apart from coherence. */
  flushErrors: number;
  differingPages: number;
  /** Device-side writes into the framebuffer (the GPU actor), and the readbacks they caused. */
  deviceWrites: number;
  readbacks: number;
  /** Wall milliseconds per frame the writeback spent scanning trackers (the snapshot step). */
  scanMsPerFrame: number;
}

export const FB = { width: 1920, height: 1080, bpp: 4 };
export const VB_BYTES = 4 << 20;

/**
 * How the run makes BO stores: null for the machine's frames; for real
 * memory, one memfd region per BO. Refuses at once, with the one-line
 * reason, when this process cannot have real memory or the strategy cannot
 * track it.
 */
async function realStores(memory: MemoryKind, strategy: DirtyStrategy, pageSize: number): Promise<((pages: number) => BoStore) | null> {
  if (memory === 'simulated') return null;
  if (strategy.realMemory !== true) {
    throw new StrategyError('unsupported', strategy.name, `--memory real is tracked by the running kernel: strategy '${strategy.name}' cannot track it (uffd-wp and full can)`);
  }
  const probe = await probeLinuxWp();
  if (!probe.ok) throw new NativeUnavailableError(probe.reason);
  const make = await LinuxWpMemory.maker();
  return (pages) => new RealBoStore(make({ pages }), pageSize);
}

/**
 * The main job: a 1920×1080×4 framebuffer surface and a 4 MiB vertex buffer,
 * mapped into two processes, drawn by several CPUs (Scene), synced every
 * frame, checked for coherence every `verifyEvery` frames and at the end.
 */
export async function runMainJob(opts: MainJobOptions = {}): Promise<MainJobReport> {
  const frames = opts.frames ?? 360;
  const hz = opts.hz ?? 60;
  const gpuEvery = opts.gpuEvery ?? 20;
  const tracking = await resolveStrategy(opts.strategy ?? 'adaptive');
  const strategy = tracking.name;
  const memory = opts.memory ?? 'simulated';
  const verifyEvery = opts.verifyEvery ?? 60;
  const FB = framebufferOf(opts.fb); // this run's framebuffer (the module's FB is the default size)
  const observer = opts.tap !== undefined ? bothObservers(opts.observer, opts.tap) : opts.observer;
  const t0 = performance.now();
  const fbBytes = FB.width * FB.height * FB.bpp;
  const machine = new Machine({ cpus: opts.cpus ?? 4, memoryBytes: 2 * (fbBytes + VB_BYTES) + (8 << 20), ...strategyMachineOptions(tracking) });
  const store = await realStores(memory, tracking, machine.pageSize);
  let device: Device | null = null;
  const url = opts.deviceUrl ?? (device = await startDevice({ port: 0, bandwidth: opts.bandwidth, fenceLatency: opts.fenceLatency })).url;
  let driver: Driver;
  try {
    driver = await Driver.connect({ machine, url, token: opts.token, connect: { timeoutMs: opts.connectTimeoutMs }, strategy: tracking, writeback: opts.writeback, log: opts.log });
  } catch (e) {
    await device?.close();
    throw e;
  }
  let gpu: GpuActor | null = null;
  try {
    opts.onDriver?.(driver);
    const fbBo = driver.createBo(fbBytes, { store: store ?? undefined });
    driver.createSurface(fbBo, 0, { width: FB.width, height: FB.height, depth: 1, bytesPerPixel: FB.bpp });
    const vbBo = driver.createBo(VB_BYTES, { store: store ?? undefined });
    driver.createBufferResource(vbBo);
    const fb = { width: FB.width, height: FB.height, pitch: FB.width * FB.bpp };
    const sceneTargets = { cpus: machine.cpus, pageSize: machine.pageSize };
    let scene: Scene;
    if (store === null) {
      const display = machine.createMm();
      const app = machine.createMm();
      const fbVma = driver.mmap(display, fbBo);
      driver.mmap(app, fbBo); // a second mapping of the framebuffer: trackers walk both
      const vbVma = driver.mmap(app, vbBo);
      const onWrite = opts.tap?.cpuWrite.bind(opts.tap);
      scene = new Scene({ ...sceneTargets, fb: { ...fb, mm: display, vma: fbVma }, vb: { mm: app, vma: vbVma, bytes: VB_BYTES }, onWrite }, opts.seed ?? 1);
    } else {
      // Real memory: the scene's writes are this thread's stores into the BOs' memfds.
      const d = driver;
      const write = (target: 'fb' | 'vb', offset: number, data: Uint8Array) => d.cpuWrite(target === 'fb' ? fbBo : vbBo, offset, data);
      scene = new Scene({ ...sceneTargets, fb, vb: { bytes: VB_BYTES }, write }, opts.seed ?? 1);
    }
    if (gpuEvery > 0 && (device !== null || opts.control === true)) {
      const direct = device !== null ? inProcessWriter(device, driver) : await controlWriter(url, opts.controlToken, driver);
      const writer = opts.tap !== undefined ? tappedWriter(direct, opts.tap) : direct;
      gpu = new GpuActor(writer, { bo: fbBo.id, pitch: FB.width * FB.bpp, bytesPerPixel: FB.bpp }, FB.gpuBox);
    }

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
    // Coherence is the digest comparison alone. A flush that fails inside it (a
    // device fault) is counted and retried: the driver recovers by itself.
    const verify = async (after: number) => {
      await Promise.all(pending);
      const before = differingPages;
      let ok = true;
      for (const bo of [fbBo, vbBo]) {
        for (let attempt = 1; ; attempt++) {
          try {
            const r = await driver.verifyCoherent(bo);
            if (!r.ok) {
              ok = false;
              differingPages += r.differing.length;
            }
            break;
          } catch (e) {
            flushErrors++;
            opts.log?.(`verification of BO ${bo.id} failed: ${(e as Error).message}`);
            if (attempt === VERIFY_ATTEMPTS) {
              ok = false;
              break;
            }
            await new Promise((r) => setTimeout(r, 100 * attempt));
          }
        }
      }
      if (!ok) coherent = false;
      observer?.verified?.({ frames: after, ok, differingPages: differingPages - before });
    };
    await observer?.start?.({
      driver, machine, device, fb: { bo: fbBo, width: FB.width, height: FB.height, bytesPerPixel: FB.bpp, pitch: FB.width * FB.bpp }, vb: vbBo,
      settings: {
        frames, hz, cpus: machine.cpus.length, strategy, memory, gpuEvery, verifyEvery, seed: opts.seed ?? 1, device: opts.deviceUrl ?? 'embedded',
        deviceWrites: gpu !== null, windowBatches: driver.writeback.windowBatches,
      },
    });
    const start = performance.now();
    let f = 0;
    for (; (frames === 0 || f < frames) && opts.signal?.aborted !== true; f++) {
      const w = await scene.frame(f);
      pagesDirtied += w.fbPages + w.vbPages;
      if (gpu !== null && f % gpuEvery === gpuEvery >> 1) {
        await gpu.render(f).catch((e: Error) => opts.log?.(`device-side write failed: ${e.message}`));
      }
      await observer?.frame?.(f, w);
      const flushed = driver.flush();
      track(flushed);
      await observer?.flush?.(f, flushed);
      opts.onFrame?.(f + 1, frames);
      if (verifyEvery > 0 && (f + 1) % verifyEvery === 0) await verify(f + 1);
      if (hz > 0) {
        const wait = start + ((f + 1) * 1000) / hz - performance.now();
        await new Promise((r) => setTimeout(r, Math.max(0, wait)));
      } else if (pending.size > 4) {
        await Promise.race(pending);
      }
    }
    await verify(f);
    latencies.sort((a, b) => a - b);
    const cpus = machine.cpus;
    const sum = (g: (c: (typeof cpus)[number]) => number) => cpus.reduce((a, c) => a + g(c), 0);
    const report: MainJobReport = {
      frames: f,
      pagesDirtied,
      pagesSent: driver.writeback.stats.pagesSent,
      bytesOnWire: driver.conn.bytesSent,
      fences: latencies.length,
      fenceLatencyMs: { p50: round(percentile(latencies, 50) || 0), p99: round(percentile(latencies, 99) || 0) },
      methodSwitches: driver.writeback.stats.methodSwitches,
      faults: sum((c) => Object.values(c.counters.faults).reduce((a, b) => a + b, 0)),
      tlbFlushes: machine.counters.tlbFlushes,
      ipis: machine.counters.ipis,
      coherent,
      strategy,
      memory,
      seconds: round((performance.now() - t0) / 1000),
      flushErrors,
      differingPages,
      scanMsPerFrame: round(driver.writeback.stats.scanMs / Math.max(1, f)),
      deviceWrites: gpu?.writes ?? 0,
      readbacks: driver.readbacks,
    };
    await observer?.end?.(report);
    return report;
  } finally {
    await gpu?.close();
    await driver.close();
    await device?.close();
  }
}

/** The framebuffer of a run, and where the GPU actor's box goes in it (as far right and down as 1920×1080 has it, within the frame). */
function framebufferOf(size: { width: number; height: number } = FB): typeof FB & { gpuBox: { x: number; y: number; w: number; h: number } } {
  requireInteger('framebuffer width', size.width, 640, 8192);
  requireInteger('framebuffer height', size.height, 360, 8192);
  return { ...FB, width: size.width, height: size.height, gpuBox: { x: Math.min(1600, size.width - 320), y: Math.min(560, size.height - 160), w: 256, h: 96 } };
}

/** Verifications of one BO tried before it counts as incoherent (flushes may fail while a fault lasts). */
const VERIFY_ATTEMPTS = 5;

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
