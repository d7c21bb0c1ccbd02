import { ENCODINGS, type Encoding } from '../../src/index.js';
import { startDeviceProcess } from '../lib/device-process.js';
import { measureMainJob, type MeasuredRun } from '../lib/main-job-run.js';
import { makeRow, targets, type Row } from '../lib/result.js';
import { type Context, type Scenario } from '../lib/scenario.js';
import { repeat } from '../lib/stats.js';

/** The bytes-on-the-wire target for the default encoding: at least 3× lower than whole pieces. */
const WIRE_TARGET = 1 / 3;

/**
 * Scenario 10: the main job (`npm start`'s workload, adaptive tracking) unpaced
 * against a device in another process, with each writeback encoding. 'raw' (the
 * whole dirty pieces, as the driver sent before encodings) is the baseline of
 * every row. Bytes on the wire = everything the driver sent (frames, framing,
 * fences); CPU = this process (driver and scene); encode = the writeback's time
 * reading guest memory into frames, computing deltas and compressing.
 */
export const encodings: Scenario = {
  id: '10',
  title: 'Encodings',
  async run(ctx: Context): Promise<Row[]> {
    const frames = ctx.quick ? 60 : 180;
    const device = await startDeviceProcess();
    const runs = new Map<Encoding, MeasuredRun[]>();
    try {
      for (const encoding of ENCODINGS) {
        ctx.log(`  10: ${encoding}`);
        runs.set(encoding, await repeat(ctx.warmup, ctx.runs, () => measureMainJob({ deviceUrl: device.url, frames, hz: 0, writeback: { encoding } })));
      }
    } finally {
      await device.child.close();
    }
    const perFrame = (e: Encoding, f: (r: MeasuredRun) => number) => runs.get(e)!.map((r) => f(r) / frames);
    const wire = (r: MeasuredRun) => r.report.bytesOnWire / 1024;
    const cpu = (r: MeasuredRun) => r.cpuMs;
    const encode = (r: MeasuredRun) => r.writeback.encodeMs;
    const rows: Row[] = [];
    for (const e of ENCODINGS) {
      const vsRaw = (f: (r: MeasuredRun) => number) => (e === 'raw' ? {} : { baseline: { name: 'raw', samples: perFrame('raw', f) } });
      rows.push(
        makeRow('10', `${e}: bytes on the wire`, {
          unit: 'KiB/frame', samples: perFrame(e, wire), ...vsRaw(wire),
          ...(e === 'auto' ? { target: targets.ratioAtMost(Number(WIRE_TARGET.toFixed(3)), 'raw (3× lower)') } : {}),
          note: `${frames} frames unpaced, adaptive tracking, device in another process; CPU = this process (driver + scene)`,
        }),
        makeRow('10', `${e}: driver CPU`, { unit: 'ms/frame', samples: perFrame(e, cpu), ...vsRaw(cpu) }),
        makeRow('10', `${e}: encode time`, { unit: 'ms/frame', samples: perFrame(e, encode), ...vsRaw(encode) }),
      );
    }
    const deflated = runs.get('deflate')!;
    rows.push(
      makeRow('10', 'DEFLATE level 1 on the scene\'s deltas: speed', { unit: 'MB/s', samples: deflated.map((r) => r.compressRate / 1000) }),
      makeRow('10', 'DEFLATE level 1 on the scene\'s deltas: compressed / raw', { unit: 'ratio', samples: deflated.map((r) => r.compressRatio) }),
    );
    return rows;
  },
};
