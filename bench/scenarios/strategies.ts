import { STRATEGIES } from '../../src/index.js';
import { probeLinuxWp } from '../../src/native/index.js';
import { startDeviceProcess } from '../lib/device-process.js';
import { measureMainJob, type MeasuredRun } from '../lib/main-job-run.js';
import { makeRow, type Row } from '../lib/result.js';
import { type Context, type Scenario } from '../lib/scenario.js';
import { repeat } from '../lib/stats.js';

/** One configuration of scenario 5: a strategy, on simulated or real memory. */
interface Config {
  label: string;
  strategy: string;
  memory: 'simulated' | 'real';
}

/**
 * Scenario 5: the main job (`npm start`'s workload) unpaced, with each dirty
 * tracking strategy on the same workload — the six built-ins on simulated
 * memory, and uffd-wp on real memory tracked by the running kernel where
 * this machine allows it: bytes on the wire, faults, scan time and driver
 * CPU time per frame. "Send the whole BO every frame" (full) is the
 * baseline of the bytes.
 */
export const strategies: Scenario = {
  id: '5',
  title: 'Strategies',
  async run(ctx: Context): Promise<Row[]> {
    // 180 frames are one cycle of the scene's phases (busy, idle, sparse, idle).
    const frames = ctx.quick ? 60 : 180;
    const configs: Config[] = STRATEGIES.map((s) => ({ label: s, strategy: s, memory: 'simulated' }));
    const probe = await probeLinuxWp();
    if (probe.ok) configs.push({ label: 'uffd-wp (real memory)', strategy: 'uffd-wp', memory: 'real' });
    else ctx.log(`  5: no real-memory row: ${probe.reason}`);
    const device = await startDeviceProcess();
    const runs = new Map<string, MeasuredRun[]>();
    try {
      for (const c of configs) {
        ctx.log(`  5: ${c.label}`);
        runs.set(c.label, await repeat(ctx.warmup, ctx.runs, () => measureMainJob({ deviceUrl: device.url, frames, hz: 0, strategy: c.strategy, memory: c.memory })));
      }
    } finally {
      await device.child.close();
    }
    const perFrame = (label: string, f: (r: MeasuredRun) => number) => runs.get(label)!.map((r) => f(r) / frames);
    const wire = (r: MeasuredRun) => r.report.bytesOnWire / 1024;
    const rows: Row[] = [];
    for (const { label: s } of configs) {
      rows.push(
        makeRow('5', `${s}: bytes on the wire`, {
          unit: 'KiB/frame', samples: perFrame(s, wire),
          ...(s === 'full' ? {} : { baseline: { name: 'full', samples: perFrame('full', wire) } }),
          note: `${frames} frames unpaced; scan = tracker scans, CPU = this process (driver + scene), device in another process`,
        }),
        makeRow('5', `${s}: faults`, {
          unit: 'faults/frame', samples: perFrame(s, (r) => r.report.faults),
          ...(s.includes('real') ? { note: 'simulated faults only: the real kernel\'s write faults are not counted' } : {}),
        }),
        makeRow('5', `${s}: scan time`, { unit: 'µs/frame', samples: perFrame(s, (r) => r.scanMs * 1000) }),
        makeRow('5', `${s}: CPU time`, { unit: 'ms/frame', samples: perFrame(s, (r) => r.cpuMs) }),
      );
    }
    return rows;
  },
};
