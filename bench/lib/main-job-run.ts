import { type Driver, type MainJobOptions, type MainJobReport, runMainJob, type WritebackStats } from '../../src/index.js';

/** One main-job run with what the report lacks: CPU time, scan time, rounds, driver memory. */
export interface MeasuredRun {
  report: MainJobReport;
  /** User + system CPU time of this process (the driver and the scene; the device is another process). */
  cpuMs: number;
  scanMs: number;
  /** Writeback rounds started between the first and the last frame, and the seconds between them. */
  loopRounds: number;
  loopSeconds: number;
  /** Peak heap + ArrayBuffer bytes of this process in the first and second half of the frames. */
  memoryPeak: [number, number];
  stagingBuffers: number;
  peakInFlight: number;
  /** The writeback engine's counters at the end (encoding time, span and compressed batches). */
  writeback: WritebackStats;
  /** DEFLATE speed (raw bytes per ms) and ratio as the encoding chooser measured them (0: never). */
  compressRate: number;
  compressRatio: number;
}

/** Run the main job against an external device (so this process holds the driver only) and measure it. */
export async function measureMainJob(opts: MainJobOptions & { deviceUrl: string; frames: number }): Promise<MeasuredRun> {
  let driver: Driver | null = null;
  const memoryPeak: [number, number] = [0, 0];
  let first = { t: 0, rounds: 0 };
  let last = { t: 0, rounds: 0 };
  const onFrame = (f: number, n: number) => {
    const m = process.memoryUsage();
    const half = f * 2 <= n ? 0 : 1;
    memoryPeak[half] = Math.max(memoryPeak[half], m.heapUsed + m.arrayBuffers);
    const at = { t: performance.now(), rounds: driver?.writeback.stats.rounds ?? 0 };
    if (f === 1) first = at;
    last = at;
  };
  const cpu0 = process.cpuUsage();
  // Frames go as whole pieces ('raw') unless a scenario asks for an encoding: the strategies'
  // bytes stay comparable with a 'full' baseline that deltas would make as cheap as they are.
  const writeback = { encoding: 'raw' as const, ...opts.writeback };
  const report = await runMainJob({ verifyEvery: 0, ...opts, writeback, onFrame, onDriver: (d) => (driver = d) });
  const cpu = process.cpuUsage(cpu0);
  if (!report.coherent) throw new Error(`main job (${report.strategy}) lost coherence: ${report.differingPages} pages differ, ${report.flushErrors} flush errors`);
  const stats = (driver as Driver | null)!.writeback.stats;
  return {
    report,
    cpuMs: (cpu.user + cpu.system) / 1000,
    scanMs: stats.scanMs,
    loopRounds: last.rounds - first.rounds,
    loopSeconds: (last.t - first.t) / 1000,
    memoryPeak,
    stagingBuffers: stats.stagingBuffers,
    peakInFlight: stats.peakInFlight,
    writeback: { ...stats },
    compressRate: (driver as Driver | null)!.writeback.chooser.compressRate,
    compressRatio: (driver as Driver | null)!.writeback.chooser.compressRatio,
  };
}
