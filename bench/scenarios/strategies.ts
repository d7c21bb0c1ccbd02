import { STRATEGIES, type Strategy } from '../../src/index.js';
import { startDeviceProcess } from '../lib/device-process.js';
import { measureMainJob, type MeasuredRun } from '../lib/main-job-run.js';
import { makeRow, type Row } from '../lib/result.js';
import { type Context, type Scenario } from '../lib/scenario.js';
import { repeat } from '../lib/stats.js';

/**
 * Scenario 5: the main job (`npm start`'s workload) unpaced, with each dirty
 * tracking strategy: bytes on the wire, faults, scan time and driver CPU time
 * per frame. "Send the whole BO every frame" is the baseline of the bytes.
 */
export const strategies: Scenario = {
  id: '5',
  title: 'Strategies',
  async run(ctx: Context): Promise<Row[]> {
    // 180 frames are one cycle of the scene's phases (busy, idle, sparse, idle).
    const frames = ctx.quick ? 60 : 180;
    const device = await startDeviceProcess();
    const runs = new Map<Strategy, MeasuredRun[]>();
    try {
      for (const strategy of STRATEGIES) {
        ctx.log(`  5: ${strategy}`);
        runs.set(strategy, await repeat(ctx.warmup, ctx.runs, () => measureMainJob({ deviceUrl: device.url, frames, hz: 0, strategy })));
      }
    } finally {
      await device.child.close();
    }
    const perFrame = (s: Strategy, f: (r: MeasuredRun) => number) => runs.get(s)!.map((r) => f(r) / frames);
    const wire = (r: MeasuredRun) => r.report.bytesOnWire / 1024;
    const rows: Row[] = [];
    for (const s of STRATEGIES) {
      rows.push(
        makeRow('5', `${s}: bytes on the wire`, {
          unit: 'KiB/frame', samples: perFrame(s, wire),
          ...(s === 'full' ? {} : { baseline: { name: 'full', samples: perFrame('full', wire) } }),
          note: `${frames} frames unpaced; scan = tracker scans, CPU = this process (driver + scene), device in another process`,
        }),
        makeRow('5', `${s}: faults`, { unit: 'faults/frame', samples: perFrame(s, (r) => r.report.faults) }),
        makeRow('5', `${s}: scan time`, { unit: 'µs/frame', samples: perFrame(s, (r) => r.scanMs * 1000) }),
        makeRow('5', `${s}: CPU time`, { unit: 'ms/frame', samples: perFrame(s, (r) => r.cpuMs) }),
      );
    }
    return rows;
  },
};
