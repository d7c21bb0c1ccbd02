import { startDeviceProcess } from '../lib/device-process.js';
import { measureMainJob, type MeasuredRun } from '../lib/main-job-run.js';
import { makeRow, type Row } from '../lib/result.js';
import { type Context, MiB, PAGE, type Scenario } from '../lib/scenario.js';
import { repeat } from '../lib/stats.js';

const BANDWIDTH = 50_000_000;
const FENCE_LATENCY_MS = 5;
const WINDOWS = [1, 4, 16] as const;
/** Slack for "bounded": GC timing alone moves the heap by a few MiB between halves. */
const GROWTH_LIMIT_MIB = 16;

/**
 * Scenario 7: the main job at 60 Hz against a device emulating 50 MB/s and
 * 5 ms fence latency, for windows of 1, 4 and 16 batches. The scene dirties
 * more than the link carries, so writeback must coalesce (fewer bytes on the
 * wire than dirtied) and the driver's memory must not grow with the backlog.
 */
export const slowDevice: Scenario = {
  id: '7',
  title: 'Slow device',
  async run(ctx: Context): Promise<Row[]> {
    const frames = ctx.quick ? 20 : 120;
    const device = await startDeviceProcess(['--bandwidth', String(BANDWIDTH), '--fence-latency', String(FENCE_LATENCY_MS)]);
    const rows: Row[] = [];
    try {
      for (const windowBatches of WINDOWS) {
        ctx.log(`  7: window ${windowBatches}`);
        const runs = await repeat(ctx.warmup, ctx.runs, () =>
          measureMainJob({ deviceUrl: device.url, frames, hz: 60, writeback: { windowBatches } }));
        const of = (f: (r: MeasuredRun) => number) => runs.map(f);
        const maxStaging = Math.max(...of((r) => r.stagingBuffers));
        rows.push(
          makeRow('7', `window ${windowBatches}: frames synced`, {
            unit: 'frames/s', samples: of((r) => r.loopRounds / r.loopSeconds),
            note: `${frames} frames at 60 Hz, ${BANDWIDTH / 1e6} MB/s, ${FENCE_LATENCY_MS} ms fence latency; ≤ ${maxStaging} staging buffers of 1 MiB`,
          }),
          makeRow('7', `window ${windowBatches}: wire bytes / dirtied bytes`, {
            unit: 'ratio', samples: of((r) => r.report.bytesOnWire / (r.report.pagesDirtied * PAGE)),
          }),
          makeRow('7', `window ${windowBatches}: driver memory peak`, {
            unit: 'MiB', samples: of((r) => Math.max(...r.memoryPeak) / MiB),
          }),
          makeRow('7', `window ${windowBatches}: driver memory growth`, {
            unit: 'MiB', samples: of((r) => (r.memoryPeak[1] - r.memoryPeak[0]) / MiB),
            target: { text: `bounded (≤ ${GROWTH_LIMIT_MIB} MiB, 2nd half − 1st)`, met: (r) => r.median <= GROWTH_LIMIT_MIB && maxStaging <= windowBatches },
          }),
        );
      }
    } finally {
      await device.child.close();
    }
    return rows;
  },
};
