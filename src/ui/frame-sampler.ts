import { Bitmap } from '../core/index.js';
import type { Bo, FlushResult } from '../driver/index.js';
import type { MainJobObserver, MainJobReport, MainJobView } from '../workload/main-job.js';
import { DeviceImage } from './device-image.js';
import { PageMap } from './page-map.js';
import { type Column, FrameSeries, RollingPercentiles } from './series.js';

/** A BO as the dashboard lists it; index is its place in every per-BO array. */
export interface BoInfo {
  index: number;
  id: number;
  name: string;
  pages: number;
  pageSize: number;
  /** Set for the framebuffer: how its bytes are pixels (B8G8R8X8). */
  surface?: { width: number; height: number; pitch: number; bytesPerPixel: number };
}

/** Settings and BOs of the run: what every viewer gets first. */
export interface RunInfo {
  settings: MainJobView['settings'];
  bos: BoInfo[];
  /** Wall clock (ms since the epoch) at the first frame. */
  startedAt: number;
}

export interface Coherence {
  /** Frames run when the verification ended. */
  frames: number;
  ok: boolean;
  differingPages: number;
  /** Wall clock (ms since the epoch). */
  at: number;
}

export interface RunStatus {
  /** Frames drawn so far. */
  frame: number;
  elapsedMs: number;
  running: boolean;
  flushErrors: number;
  lastVerification: Coherence | null;
  /** The run's summary, once it ended. */
  summary: MainJobReport | null;
}

/** Time-series columns (per frame; per-BO columns follow for every BO: method<i>, switches<i>). */
const BASE_COLUMNS: Column[] = [
  { name: 'frame', merge: 'first' },
  { name: 'dirtied', merge: 'mean' },
  { name: 'sent', merge: 'mean' },
  { name: 'bytes', merge: 'mean' },
  { name: 'latency', merge: 'max' },
  { name: 'p50', merge: 'mean' },
  { name: 'p99', merge: 'max' },
  { name: 'faults', merge: 'mean' },
  { name: 'tlbFlushes', merge: 'mean' },
  { name: 'ipis', merge: 'mean' },
  { name: 'errors', merge: 'sum' },
];

/** Method of a BO in the series: 0 PAGETABLE, 1 MKWRITE, null untracked or another strategy's method. */
function methodCode(bo: Bo): number | null {
  const m = bo.tracker?.method;
  return m === 'pagetable' ? 0 : m === 'mkwrite' ? 1 : null;
}

interface PendingRow {
  frame: number;
  dirtied: number;
  methods: Array<number | null>;
  outcome: FlushResult | Error | null;
}

/**
 * Watches the main job (a MainJobObserver) and keeps what the dashboard and
 * the report show: one time-series row per frame, the page map of every BO,
 * the overlays, the run's status, and optionally the device's copy of the
 * framebuffer. Every hook does a bounded amount of work and returns nothing,
 * so the job never waits for it; the expensive reads (page states, the
 * device image) happen only when a viewer asks, at its own pace.
 */
export class FrameSampler implements MainJobObserver {
  info: RunInfo | null = null;
  series: FrameSeries | null = null;
  maps: PageMap[] = [];
  image: DeviceImage | null = null;
  readonly status: RunStatus = { frame: 0, elapsedMs: 0, running: false, flushErrors: 0, lastVerification: null, summary: null };
  /** Framebuffer pages written back, and pages the device changed, since takeOverlays() last ran. */
  private writtenBack: Bitmap | null = null;
  private deviceChanged: Bitmap | null = null;
  /** Page states frozen when the run ended (the driver is gone after that). */
  private finalStates: Uint8Array[] | null = null;
  private job: MainJobView | null = null;
  private t0 = 0;
  private readonly pending: PendingRow[] = [];
  private readonly latencies = new RollingPercentiles(60);
  private last = { sent: 0, bytes: 0, faults: 0, tlbFlushes: 0, ipis: 0, switches: [] as number[] };
  private readonly ended: Array<() => Promise<void>> = [];

  constructor(private readonly opts: { image?: boolean; log?: (line: string) => void } = {}) {}

  /**
   * Run fn at the end of the run, once the status says it ended and the image was read a
   * last time, before the driver and the device close (the job waits for it).
   */
  onEnd(fn: () => Promise<void>): void {
    this.ended.push(fn);
  }

  start(job: MainJobView): void {
    this.job = job;
    const bos = [job.fb.bo, job.vb];
    const { width, height, pitch, bytesPerPixel } = job.fb;
    this.info = {
      settings: job.settings,
      bos: bos.map((bo, index) => ({
        index, id: bo.id, name: index === 0 ? 'framebuffer' : 'vertex buffer', pages: bo.pages, pageSize: bo.space.pageSize,
        ...(index === 0 ? { surface: { width, height, pitch, bytesPerPixel } } : {}),
      })),
      startedAt: Date.now(),
    };
    this.series = new FrameSeries([...BASE_COLUMNS, ...bos.flatMap((_, i): Column[] => [{ name: `method${i}`, merge: 'last' }, { name: `switches${i}`, merge: 'sum' }])]);
    this.maps = bos.map((bo) => new PageMap(bo));
    this.writtenBack = new Bitmap(job.fb.bo.pages);
    this.deviceChanged = new Bitmap(job.fb.bo.pages);
    if (this.opts.image === true) this.image = new DeviceImage(job.driver, job.fb.bo, job.device);
    this.last = { ...this.counters(), switches: bos.map((bo) => bo.tracker?.switches ?? 0) };
    this.t0 = performance.now();
    this.status.running = true;
  }

  frame(f: number, written: { fbPages: number; vbPages: number }): void {
    for (const m of this.maps) m.observeFrame(f);
    this.noteDeviceChanges();
    this.pending.push({ frame: f, dirtied: written.fbPages + written.vbPages, methods: this.maps.map((m) => methodCode(m.bo)), outcome: null });
    this.status.frame = f + 1;
    this.status.elapsedMs = performance.now() - this.t0;
  }

  flush(f: number, result: Promise<FlushResult>): void {
    orInto(this.writtenBack!, this.maps[0]!.lastDirty);
    const row = this.pending.find((r) => r.frame === f);
    const settle = (outcome: FlushResult | Error) => {
      for (const m of this.maps) m.flushSettled(f);
      if (row !== undefined) row.outcome = outcome;
      this.emitSettledRows();
    };
    result.then(settle, (e: unknown) => settle(e instanceof Error ? e : new Error(String(e))));
  }

  verified(v: { frames: number; ok: boolean; differingPages: number }): void {
    this.status.lastVerification = { ...v, at: Date.now() };
  }

  async end(report: MainJobReport): Promise<void> {
    this.emitSettledRows();
    this.noteDeviceChanges();
    this.finalStates = this.maps.map((m) => m.states(new Uint8Array(m.bo.pages)));
    // The last read of the framebuffer comes before the status says "ended": a viewer that
    // has the ended status has the final image too (reads are serialized, each after its call).
    await this.image?.refresh().catch((e: Error) => this.opts.log?.(`dashboard: last read of the framebuffer failed: ${e.message}`));
    this.status.running = false;
    this.status.summary = report;
    this.status.elapsedMs = performance.now() - this.t0;
    for (const fn of this.ended) await fn();
    this.job = null;
  }

  /** Every BO's page states (PAGE_* values) now, or as they were when the run ended. */
  pageStates(): Uint8Array[] {
    return this.finalStates ?? this.maps.map((m) => m.states(new Uint8Array(m.bo.pages)));
  }

  /** The overlays accumulated since the last call (framebuffer pages), and start anew. */
  takeOverlays(): { writtenBack: Uint32Array; deviceChanged: Uint32Array } {
    this.noteDeviceChanges();
    const out = { writtenBack: this.writtenBack!.words.slice(), deviceChanged: this.deviceChanged!.words.slice() };
    this.writtenBack!.clearAll();
    this.deviceChanged!.clearAll();
    return out;
  }

  /** Pages the driver knows the device changed (until their readback lands, so look often). */
  private noteDeviceChanges(): void {
    if (this.job !== null) orInto(this.deviceChanged!, this.job.fb.bo.deviceNewer);
  }

  private counters(): { sent: number; bytes: number; faults: number; tlbFlushes: number; ipis: number } {
    const job = this.job!;
    let faults = 0;
    for (const c of job.machine.cpus) {
      const byKind = c.counters.faults;
      for (const k in byKind) faults += byKind[k as keyof typeof byKind];
    }
    return {
      sent: job.driver.writeback.stats.pagesSent, bytes: job.driver.conn.bytesSent, faults,
      tlbFlushes: job.machine.counters.tlbFlushes, ipis: job.machine.counters.ipis,
    };
  }

  /**
   * Rows leave in frame order once their flush settled; the counters of a row are
   * what changed since the previous row left, i.e. over that flush's round (flushes
   * that joined one round share it: the first row to leave counts it), the same
   * counters the run's summary adds up.
   */
  private emitSettledRows(): void {
    while (this.pending.length > 0 && this.pending[0]!.outcome !== null && this.job !== null) {
      const row = this.pending.shift()!;
      const now = this.counters();
      const switches = this.maps.map((m) => m.bo.tracker?.switches ?? 0);
      const failed = row.outcome instanceof Error;
      const r = row.outcome as FlushResult;
      if (failed) this.status.flushErrors++;
      else this.latencies.add(r.latencyMs);
      const [p50, p99] = this.latencies.get(50, 99);
      this.series!.append([
        row.frame, row.dirtied, now.sent - this.last.sent, now.bytes - this.last.bytes, failed ? null : r.latencyMs, p50!, p99!,
        now.faults - this.last.faults, now.tlbFlushes - this.last.tlbFlushes, now.ipis - this.last.ipis, failed ? 1 : 0,
        ...row.methods.flatMap((m, i) => [m, switches[i]! - this.last.switches[i]!]),
      ]);
      this.last = { ...now, switches };
    }
  }
}

function orInto(into: Bitmap, from: Bitmap): void {
  const a = into.words;
  const b = from.words;
  for (let i = 0; i < a.length; i++) a[i]! |= b[i]!;
}
