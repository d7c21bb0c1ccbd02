import { replayTrace, type ReplayReport, resolveTrace, shippedTraces } from '../../src/trace/index.js';
import { STRATEGIES, type Strategy } from '../../src/workload/main-job.js';
import { makeRow, type Row } from '../lib/result.js';
import { type Context, type Scenario } from '../lib/scenario.js';
import { repeat } from '../lib/stats.js';

/**
 * Scenario 5 on the shipped traces (bench/traces, docs/trace.md): every
 * strategy replays each trace against an in-process device. Bytes on the wire
 * and faults are counts — the same in every run, so their rows have no spread
 * — with "send everything" (full) as the bytes' baseline; CPU time per frame
 * (this process: driver, simulated CPUs and the device) varies and is
 * measured as the other scenarios measure.
 */
export const strategiesOnTraces: Scenario = {
  id: '5',
  title: 'Strategies on the shipped traces',
  async run(ctx: Context): Promise<Row[]> {
    // --quick: the two synthetic traces, their first 20 frames.
    const traces = ctx.quick ? shippedTraces().filter((t) => !t.startsWith('scene-')) : shippedTraces();
    const frames = ctx.quick ? 20 : undefined;
    if (traces.length === 0) throw new Error('no shipped traces in bench/traces (node dist/bench/traces/generate.js makes them)');
    const rows: Row[] = [];
    for (const trace of traces) {
      const file = resolveTrace(trace);
      const runs = new Map<Strategy, ReplayReport[]>();
      for (const strategy of STRATEGIES) {
        ctx.log(`  5: ${trace}, ${strategy}`);
        runs.set(strategy, await repeat(ctx.warmup, ctx.runs, async () => {
          const r = await replayTrace(file, { strategy, frames });
          if (!r.coherent) throw new Error(`${trace} with ${strategy} lost coherence: ${r.counts.differingPages} pages differ`);
          return r;
        }));
      }
      const perFrame = (s: Strategy, f: (r: ReplayReport) => number) => runs.get(s)!.map((r) => f(r) / r.counts.frames);
      const wire = (r: ReplayReport) => r.counts.bytesOnWire / 1024;
      const n = runs.get('full')![0]!.counts.frames;
      for (const s of STRATEGIES) {
        rows.push(
          makeRow('5', `${trace}, ${s}: bytes on the wire`, {
            unit: 'KiB/frame', samples: perFrame(s, wire),
            ...(s === 'full' ? {} : { baseline: { name: 'full', samples: perFrame('full', wire) } }),
            note: `trace ${trace}, ${n} frames replayed, each flush awaited (counts are identical run to run); CPU = this process with the in-process device`,
          }),
          makeRow('5', `${trace}, ${s}: faults`, { unit: 'faults/frame', samples: perFrame(s, (r) => r.counts.faults) }),
          makeRow('5', `${trace}, ${s}: CPU time`, { unit: 'ms/frame', samples: runs.get(s)!.map((r) => r.timing.cpuMsPerFrame) }),
        );
      }
    }
    return rows;
  },
};
