import { availableParallelism } from 'node:os';
import { type ExploreResult, type ScenarioOptions, buildScenario, explore, exploreParallel } from '../../src/check/index.js';
import { makeRow, type Row, type Target } from '../lib/result.js';
import { type Context, type Scenario } from '../lib/scenario.js';
import { repeat } from '../lib/stats.js';

interface Case {
  name: string;
  options: Partial<ScenarioOptions>;
  bound: number;
}

/** Seconds of a search, failing the scenario when it does not prove the scenario holds. */
async function timed(run: () => ExploreResult | Promise<ExploreResult>, what: string): Promise<{ seconds: number; r: ExploreResult }> {
  const t0 = performance.now();
  const r = await run();
  const seconds = (performance.now() - t0) / 1000;
  if (r.verdict !== 'holds') throw new Error(`${what}: expected HOLDS, got ${r.verdict}`);
  return { seconds, r };
}

const atMostSeconds = (s: number): Target => ({ text: `≤ ${s} s`, met: (r) => r.median <= s });
const atLeast = (v: number, unit: string): Target => ({ text: `≥ ${v} ${unit}`, met: (r) => r.median >= v });

/**
 * Scenario 9: the interleaving checker (`vgpu-dirty check`). Baselines from
 * the same run: the unreduced search (no state cache, no sleep sets, no
 * probes: every interleaving executed) for the rate, and the reduced search
 * on one thread for the big scenarios. "Interleavings/s equivalent" is the
 * unreduced search's interleavings divided by the reduced search's time on
 * the same scenario: the rate the unreduced search would need to finish as fast.
 */
export const checker: Scenario = {
  id: '9',
  title: 'Checker',
  async run(ctx: Context): Promise<Row[]> {
    const jobs = Math.min(2, availableParallelism());
    const rate: Case = ctx.quick
      ? { name: 'x86 clean-record, 2 writes/CPU, bound 3', options: {}, bound: 3 }
      : { name: 'x86 clean-record, 3 writes/CPU, bound 4', options: { writes: 3 }, bound: 4 };
    const big: Case[] = ctx.quick
      ? [
        { name: '4 CPUs × 2 writes, bound 2', options: { cpus: 4 }, bound: 2 },
        { name: 'nested wp 3/3/1, bound 3', options: { helper: 'wp-clean', nestedWp: true, cpus: 3, pages: 3, writes: 1 }, bound: 3 },
      ]
      : [
        { name: '4 CPUs × 3 writes, bound 3', options: { cpus: 4, writes: 3 }, bound: 3 },
        { name: 'nested wp 3/3/3, bound 3', options: { helper: 'wp-clean', nestedWp: true, cpus: 3, pages: 3, writes: 3 }, bound: 3 },
      ];
    const targets: Record<string, Target> = {
      '4 CPUs × 3 writes, bound 3': atMostSeconds(60),
      'nested wp 3/3/3, bound 3': atMostSeconds(10),
    };
    const rows: Row[] = [];

    ctx.log(`  8: ${rate.name}, unreduced`);
    const sc = buildScenario(rate.options);
    const full = await repeat(ctx.warmup, ctx.runs, () => timed(() => explore(sc, { bound: rate.bound, reduce: false }), 'unreduced'));
    ctx.log(`  8: ${rate.name}, reduced`);
    const reduced = await repeat(ctx.warmup, ctx.runs, () => timed(() => explore(sc, { bound: rate.bound }), 'reduced'));
    const count = full[0]!.r.stats.interleavings;
    rows.push(makeRow('9', `${rate.name}: interleavings/s equivalent`, {
      unit: 'interleavings/s', samples: reduced.map((x) => count / x.seconds),
      baseline: { name: 'unreduced search', samples: full.map((x) => count / x.seconds) },
      target: atLeast(100_000, 'interleavings/s'),
      note: `${count} interleavings unreduced; the reduced search executes ${reduced[0]!.r.stats.interleavings} (one thread)`,
    }));

    for (const c of big) {
      ctx.log(`  8: ${c.name}, one thread`);
      const one = await repeat(ctx.warmup, ctx.runs, () => timed(() => explore(buildScenario(c.options), { bound: c.bound }), c.name));
      ctx.log(`  8: ${c.name}, ${jobs} worker threads`);
      const many = await repeat(ctx.warmup, ctx.runs, () => timed(() => exploreParallel(c.options, { bound: c.bound, jobs }), c.name));
      const s = many[0]!.r.stats;
      rows.push(makeRow('9', `${c.name}: time to HOLDS`, {
        unit: 's', samples: many.map((x) => x.seconds),
        baseline: { name: 'one thread', samples: one.map((x) => x.seconds) },
        ...(targets[c.name] ? { target: targets[c.name] } : {}),
        note: `${jobs} worker thread(s) after a 1 s start on one; ${s.interleavings} interleavings, ${s.states} states, ${s.probesSettled}/${s.probes} probes settled, ${s.slept} asleep`,
      }));
    }
    return rows;
  },
};
