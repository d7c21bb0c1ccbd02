import { setTimeout as sleep } from 'node:timers/promises';
import { startDevice, type Device } from '../../device/index.js';
import { Bitmap, Machine, type Mm } from '../core/index.js';
import type { Bo } from '../driver/bo.js';
import { Driver } from '../driver/driver.js';
import type { WritebackOptions } from '../driver/writeback.js';
import { type DeviceWriter, inProcessWriter } from '../workload/gpu-actor.js';
import type { MainJobReport } from '../workload/main-job.js';
import { percentile } from '../workload/stats.js';
import { LIMITS, type Prot, type TraceEvent } from './format.js';
import { deviceWriteLimits, DeviceWriteRun } from './device-writes.js';
import type { DirtyStrategy } from '../driver/strategies/contract.js';
import { TraceDecoder } from './reader.js';
import { inspectTrace, type TraceSource, type TraceSummary, traceEvents } from './source.js';
import { type StrategyPlan, strategyPlan } from './strategy.js';

export interface ReplayOptions {
  /** A built-in strategy name, a module path or a DirtyStrategy (default 'adaptive'). */
  strategy?: string | DirtyStrategy;
  writeback?: WritebackOptions;
  /** Emulated link of the in-process device. */
  bandwidth?: number;
  fenceLatency?: number;
  /** Stop after this many frames (flush records); the final verification follows. Default: the whole trace. */
  frames?: number;
  /** Sleep for the trace's think times, each at most LIMITS.maxThinkMicros (default false: replay as fast as possible). Counts do not change. */
  realtime?: boolean;
  /** Ends the replay after the current event (a think sleep ends at once); the final verification and the report follow. */
  signal?: AbortSignal;
  /** Called after every flush with the frames replayed and the trace's total. */
  onFrame?: (frame: number, frames: number) => void;
  log?: (line: string) => void;
  /** Keep per-frame figures in the report (report.perFrame). */
  perFrame?: boolean;
}

/**
 * What a replay did. Every figure here is the same on every replay of the same
 * trace with the same strategy and settings (a test checks it).
 */
export interface ReplayCounts {
  /** Flush records replayed. */
  frames: number;
  /** Distinct BO pages the CPUs wrote, summed over frames. */
  pagesDirtied: number;
  /** Distinct BO pages whose bytes writeback sent, summed over rounds. */
  pagesSent: number;
  /** Every byte the driver sent to the device (commands, DMA, fences). */
  bytesOnWire: number;
  /** DMA payload bytes among them. */
  payloadBytes: number;
  /** Writeback rounds (the frames' flushes and those of verifications). */
  flushes: number;
  /** Frame flushes whose fence the device signalled. */
  fences: number;
  faults: number;
  tlbFlushes: number;
  ipis: number;
  methodSwitches: number;
  /** Device-side writes (runs of consecutive deviceWrite records to one BO) and the readbacks they caused. */
  deviceWrites: number;
  readbacks: number;
  flushErrors: number;
  verifications: number;
  differingPages: number;
}

/** How long things took: these vary from run to run and are kept apart from the counts. */
export interface ReplayTiming {
  seconds: number;
  fenceLatencyMs: { p50: number; p99: number };
  /** Tracker scans per frame (the snapshot step of writeback). */
  scanMsPerFrame: number;
  /** CPU time of this process (driver, simulated CPUs, in-process device) per frame. */
  cpuMsPerFrame: number;
}

/** Per-frame figures (index = frame), kept when ReplayOptions.perFrame is set. */
export interface ReplayFrameSeries {
  /** Bytes the driver sent from the start of the frame to its fence (verifications between frames count to the next). */
  bytesOnWire: number[];
  pagesDirtied: number[];
  pagesSent: number[];
  faults: number[];
  /** flush() to fence, ms (NaN when the flush failed). */
  fenceMs: number[];
}

export interface ReplayReport {
  strategy: string;
  trace: TraceSummary;
  /** The device copy equalled guest memory at every verification. */
  coherent: boolean;
  counts: ReplayCounts;
  timing: ReplayTiming;
  perFrame?: ReplayFrameSeries;
}

/**
 * Replay a trace against an in-process device with one strategy.
 *
 * Determinism: the replay takes no decision from a clock or a random source.
 * Each flush record is one writeback round awaited to its fence before the
 * next record is applied (so rounds never coalesce, and every tracker scan —
 * hence the adaptive strategy's votes and switches — falls on the same
 * record every time); a run of device-side writes is followed by a fence, so
 * the driver has taken the device's announcement before the next CPU access;
 * think time only sleeps. What does vary — latencies, scan and CPU time — is
 * reported in `timing`, never in `counts`.
 */
export async function replayTrace(source: TraceSource, opts: ReplayOptions = {}): Promise<ReplayReport> {
  const trace = await inspectTrace(source);
  const plan = await strategyPlan(opts.strategy ?? 'adaptive');
  const device = await startDevice({ port: 0, pageSize: trace.start.pageSize, bandwidth: opts.bandwidth, fenceLatency: opts.fenceLatency });
  const machine = new Machine({ pageSize: trace.start.pageSize, cpus: trace.start.cpus, memoryBytes: 2 * trace.boBytes + (8 << 20), ...plan.machine });
  let driver: Driver;
  try {
    // Whole dirty pieces unless asked otherwise: 'auto' compresses by the measured link, so its
    // bytes would depend on timing, and deltas would hide what a strategy costs in pages.
    const writeback = { encoding: 'raw' as const, ...opts.writeback };
    driver = await Driver.connect({ machine, url: device.url, strategy: plan.strategy, writeback, log: opts.log });
  } catch (e) {
    await device.close();
    throw e;
  }
  try {
    return await new Replay(trace, plan, machine, driver, device, opts).run(source);
  } finally {
    await driver.close();
    await device.close();
  }
}

interface LiveMap {
  mm: Mm;
  bo: Bo;
  firstPage: number;
  address: number;
  end: number;
}

/** One replay: the trace's objects as the driver has them, and the figures so far. */
class Replay {
  private readonly decoder = new TraceDecoder();
  private readonly mms: Mm[];
  private readonly bos = new Map<number, Bo>();
  private readonly maps = new Map<number, LiveMap>();
  /** Per BO: pages the CPUs wrote since the last flush. */
  private readonly touched = new Map<Bo, Bitmap>();
  private readonly gpu: DeviceWriter;
  /** The run of device-write records being sent. */
  private deviceRun: DeviceWriteRun | null = null;
  private readonly latencies: number[] = [];
  private coherent = true;
  private readonly series: ReplayFrameSeries = { bytesOnWire: [], pagesDirtied: [], pagesSent: [], faults: [], fenceMs: [] };
  /** Cumulative figures at the end of the previous frame. */
  private last = { bytes: 0, sent: 0, faults: 0 };
  private readonly counts: ReplayCounts = {
    frames: 0, pagesDirtied: 0, pagesSent: 0, bytesOnWire: 0, payloadBytes: 0, flushes: 0, fences: 0, faults: 0, tlbFlushes: 0, ipis: 0,
    methodSwitches: 0, deviceWrites: 0, readbacks: 0, flushErrors: 0, verifications: 0, differingPages: 0,
  };

  constructor(
    private readonly trace: TraceSummary,
    private readonly plan: StrategyPlan,
    private readonly machine: Machine,
    private readonly driver: Driver,
    device: Device,
    private readonly opts: ReplayOptions,
  ) {
    this.mms = Array.from({ length: trace.start.processes }, () => machine.createMm());
    this.gpu = inProcessWriter(device, driver);
  }

  async run(source: TraceSource): Promise<ReplayReport> {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    for await (const e of traceEvents(source, this.decoder)) {
      if (this.opts.signal?.aborted === true || this.counts.frames >= (this.opts.frames ?? Infinity)) break;
      if (e.type === 'deviceWrite') {
        if (this.deviceRun?.bo !== this.bo(e.bo).id) await this.startDeviceWrites(e.bo);
        await this.deviceRun!.add(e.offset, this.decoder.bytes(e.data));
        continue;
      }
      // A blob definition is no access: a device write may go on after it.
      if (e.type !== 'blob') await this.settleDeviceWrites();
      await this.apply(e);
    }
    await this.settleDeviceWrites();
    await this.verify();
    const cpu = process.cpuUsage(cpu0);
    const wb = this.driver.writeback.stats;
    const c = this.counts;
    c.pagesSent = wb.pagesSent;
    c.payloadBytes = wb.payloadBytes;
    c.flushes = wb.rounds;
    c.methodSwitches = wb.methodSwitches;
    c.bytesOnWire = this.driver.conn.bytesSent;
    c.readbacks = this.driver.readbacks;
    c.tlbFlushes = this.machine.counters.tlbFlushes;
    c.ipis = this.machine.counters.ipis;
    c.faults = this.faults();
    this.latencies.sort((a, b) => a - b);
    const frames = Math.max(1, c.frames);
    return {
      strategy: this.plan.name,
      trace: this.trace,
      coherent: this.coherent,
      counts: c,
      ...(this.opts.perFrame === true ? { perFrame: this.series } : {}),
      timing: {
        seconds: round((performance.now() - t0) / 1000),
        fenceLatencyMs: { p50: round(percentile(this.latencies, 50) || 0), p99: round(percentile(this.latencies, 99) || 0) },
        scanMsPerFrame: round(wb.scanMs / frames),
        cpuMsPerFrame: round((cpu.user + cpu.system) / 1000 / frames),
      },
    };
  }

  private async apply(e: Exclude<TraceEvent, { type: 'deviceWrite' }>): Promise<void> {
    const ps = this.machine.pageSize;
    switch (e.type) {
      case 'start':
      case 'blob':
        return; // the decoder keeps what they say
      case 'bo': {
        const bo = this.driver.createBo(e.size);
        this.bos.set(e.bo, bo);
        this.touched.set(bo, new Bitmap(bo.pages));
        return;
      }
      case 'surface':
        this.driver.createSurface(this.bo(e.bo), e.offset, { width: e.width, height: e.height, depth: 1, bytesPerPixel: e.bytesPerPixel, rowPitch: e.rowPitch });
        return;
      case 'buffer':
        this.driver.createBufferResource(this.bo(e.bo), e.offset, e.size);
        return;
      case 'map': {
        const bo = this.bo(e.bo);
        const mm = this.mms[e.process]!;
        const vma = this.driver.mmap(mm, bo, { pgoff: e.firstPage, pages: e.pages, address: e.address, prot: e.prot });
        this.maps.set(e.map, { mm, bo, firstPage: e.firstPage, address: vma.start, end: vma.start + e.pages * ps });
        return;
      }
      case 'unmap': {
        const m = this.maps.get(e.map)!;
        m.mm.munmap(m.address, m.end - m.address);
        this.maps.delete(e.map);
        return;
      }
      case 'protect': {
        const m = this.maps.get(e.map)!;
        m.mm.mprotect(m.address + e.firstPage * ps, e.pages * ps, e.prot as Prot);
        return;
      }
      case 'write': {
        const mm = this.mms[e.process]!;
        const bytes = this.decoder.bytes(e.data);
        this.touch(this.mapAt(mm, e.address), e.address, bytes.length);
        await this.machine.cpus[e.cpu]!.writeAsync(mm, e.address, bytes);
        return;
      }
      case 'boWrite': {
        const bytes = this.decoder.bytes(e.data);
        const m = this.maps.get(e.via!)!; // the decoder chose a mapping writable over the bytes
        const address = m.address + e.offset - m.firstPage * ps;
        this.touch(m, address, bytes.length);
        await this.machine.cpus[e.cpu]!.writeAsync(m.mm, address, bytes);
        return;
      }
      case 'read':
        await this.machine.cpus[e.cpu]!.readAsync(this.mms[e.process]!, e.address, e.length);
        return;
      case 'flush':
        return this.flush();
      case 'verify':
        return this.verify();
      case 'think':
        if (this.opts.realtime === true) await this.think(e.micros);
        return;
    }
  }

  /** A frame ends: count what the CPUs dirtied, write back, wait for the fence. */
  private async flush(): Promise<void> {
    let dirtied = 0;
    for (const pages of this.touched.values()) {
      dirtied += pages.count();
      pages.clearAll();
    }
    this.counts.pagesDirtied += dirtied;
    let fenceMs = NaN;
    try {
      fenceMs = (await this.driver.flush()).latencyMs;
      this.latencies.push(fenceMs);
      this.counts.fences++;
    } catch (e) {
      this.counts.flushErrors++;
      this.opts.log?.(`flush failed: ${(e as Error).message}`);
    }
    if (this.opts.perFrame === true) {
      const now = { bytes: this.driver.conn.bytesSent, sent: this.driver.writeback.stats.pagesSent, faults: this.faults() };
      const s = this.series;
      s.bytesOnWire.push(now.bytes - this.last.bytes);
      s.pagesDirtied.push(dirtied);
      s.pagesSent.push(now.sent - this.last.sent);
      s.faults.push(now.faults - this.last.faults);
      s.fenceMs.push(fenceMs);
      this.last = now;
    }
    this.counts.frames++;
    this.opts.onFrame?.(this.counts.frames, Math.min(this.trace.frames, this.opts.frames ?? Infinity));
  }

  /** Compare every BO's device copy with guest memory (each comparison flushes first). */
  private async verify(): Promise<void> {
    this.counts.verifications++;
    for (const bo of this.bos.values()) {
      try {
        const r = await this.driver.verifyCoherent(bo);
        if (!r.ok) {
          this.coherent = false;
          this.counts.differingPages += r.differing.length;
        }
      } catch (e) {
        this.coherent = false;
        this.counts.flushErrors++;
        this.opts.log?.(`verification of BO ${bo.id} failed: ${(e as Error).message}`);
      }
    }
  }

  /**
   * A run of device writes to trace BO `id` begins (consecutive records to one
   * BO are one device write, however many batches the device's limits cut it
   * into). A fence first: the device has applied the driver's definition of
   * the BO (sent over the socket) before the device writes into it. A fence
   * after each batch: the driver has taken its announcement before the next
   * batch or the next CPU access (the device refuses to pile announcements up).
   */
  private async startDeviceWrites(id: number): Promise<void> {
    await this.settleDeviceWrites();
    await this.driver.conn.fence();
    this.counts.deviceWrites++;
    this.deviceRun = new DeviceWriteRun(this.bo(id).id, deviceWriteLimits(this.driver.conn.welcome!), async (bo, ranges) => {
      await this.gpu.write(bo, ranges);
      await this.driver.conn.fence();
    });
  }

  /** Send the rest of the device-write run (and fence). */
  private async settleDeviceWrites(): Promise<void> {
    const run = this.deviceRun;
    if (run === null) return;
    this.deviceRun = null;
    await run.end();
  }

  /** Sleep a think record's time, at most LIMITS.maxThinkMicros; the replay's signal ends it. */
  private async think(micros: number): Promise<void> {
    const us = Math.min(micros, LIMITS.maxThinkMicros);
    if (us >= 1_000_000) this.opts.log?.(`think time: sleeping ${us / 1e6} s${us < micros ? ` (the trace asks ${micros / 1e6} s; one sleep is at most ${LIMITS.maxThinkMicros / 1e6} s)` : ''}`);
    try {
      await sleep(us / 1000, undefined, { signal: this.opts.signal });
    } catch (e) {
      if ((e as Error).name !== 'AbortError') throw e;
    }
  }

  private faults(): number {
    return this.machine.cpus.reduce((a, cpu) => a + Object.values(cpu.counters.faults).reduce((x, y) => x + y, 0), 0);
  }

  private bo(id: number): Bo {
    return this.bos.get(id)!;
  }

  private mapAt(mm: Mm, address: number): LiveMap {
    for (const m of this.maps.values()) if (m.mm === mm && m.address <= address && address < m.end) return m;
    throw new Error(`no mapping at 0x${address.toString(16)}`); // the decoder checked there is one
  }

  /** Note the BO pages bytes [address, address + length) of mapping m lie on. */
  private touch(m: LiveMap, address: number, length: number): void {
    const ps = this.machine.pageSize;
    const first = m.firstPage + Math.floor((address - m.address) / ps);
    const last = m.firstPage + Math.floor((address + length - 1 - m.address) / ps);
    this.touched.get(m.bo)!.setRange(first, last + 1);
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** A replay's figures under the main job's report keys (`run --trace` prints them as `run` does). */
export function asMainJobReport(r: ReplayReport): MainJobReport {
  const c = r.counts;
  return {
    frames: c.frames,
    pagesDirtied: c.pagesDirtied,
    pagesSent: c.pagesSent,
    bytesOnWire: c.bytesOnWire,
    fences: c.fences,
    fenceLatencyMs: r.timing.fenceLatencyMs,
    methodSwitches: c.methodSwitches,
    faults: c.faults,
    tlbFlushes: c.tlbFlushes,
    ipis: c.ipis,
    coherent: r.coherent,
    strategy: r.strategy,
    memory: 'simulated',
    seconds: r.timing.seconds,
    flushErrors: c.flushErrors,
    differingPages: c.differingPages,
    deviceWrites: c.deviceWrites,
    readbacks: c.readbacks,
    scanMsPerFrame: r.timing.scanMsPerFrame,
  };
}
