// The reductions (state caching with exact local state, sleep sets, one-step
// probes, checkpoints, worker threads) against the unreduced search on a grid
// of small scenarios: the same verdicts, the same counterexample bounds and,
// where every invariant holds, exactly the same set of reachable global states.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ScenarioOptions, buildScenario, explore, exploreParallel } from '../../src/check/index.js';

const GRID: Array<[Partial<ScenarioOptions>, number]> = [
  [{}, 2],
  [{ arch: 'sw-dirty' }, 2],
  [{ arch: 'vivt', helper: 'strict-tlb-first' }, 1],
  [{ helper: 'wp-clean', nestedWp: true, writes: 1 }, 2],
  [{ helper: 'wp-clean', reads: true, writes: 1 }, 2],
  [{ helper: 'clean-record', offsets: true, writes: 1 }, 2],
  [{ nestedClean: true, writes: 1, ignore: ['guarantee-b'] }, 1],
  [{ driver: 'pagetable', switchAfter: 0, rounds: 2, writes: 1 }, 2],
  [{ driver: 'mkwrite', offsets: true, reads: true, writes: 1 }, 2],
  [{ driver: 'pagetable', munmap: true, writes: 1 }, 2],
  [{ driver: 'mkwrite', resources: 2, switchAfter: 0 }, 1],
  [{ helper: 'uffd-wp', writes: 1 }, 2],
  [{ helper: 'uffd-wp', reads: true, writes: 1 }, 2],
  [{ helper: 'soft-dirty', remap: true }, 0],
  [{ helper: 'soft-dirty', writes: 1, ignore: ['guarantee-b', 'lost-write'] }, 2],
  // failing ones
  [{ helper: 'soft-dirty' }, 2],
  [{ helper: 'uffd-wp', unregisteredTail: true, plants: { scanProtectsUnregistered: true } as ScenarioOptions['plants'] }, 2],
  [{ consumer: 'before-flush' }, 2],
  [{ arch: 'vivt', helper: 'strict' }, 2],
  [{ helper: 'wp-clean', nestedWp: true, nestedFlushRule: false }, 2],
  [{ driver: 'mkwrite', offsets: true, plants: { mkwriteWindow: true } as ScenarioOptions['plants'] }, 2],
  [{ driver: 'pagetable', switchAfter: 0, offsets: true, rounds: 2, plants: { handlersIgnoreReservation: true } as ScenarioOptions['plants'] }, 2],
];

test('the reduced search reaches the verdicts and, where everything holds, exactly the global states of the unreduced one', () => {
  let reducedRuns = 0;
  let fullRuns = 0;
  for (const [options, bound] of GRID) {
    const sc = buildScenario(options);
    const full = explore(sc, { bound, reduce: false, iterative: false, collectStates: true });
    const reduced = explore(sc, { bound, iterative: false, collectStates: true });
    const what = JSON.stringify(options);
    assert.equal(reduced.verdict, full.verdict, what);
    assert.equal(reduced.violation?.invariant, full.violation?.invariant, what);
    if (full.verdict === 'holds') {
      assert.deepEqual([...reduced.reachedStates!].sort(), [...full.reachedStates!].sort(), what);
      reducedRuns += reduced.stats.interleavings;
      fullRuns += full.stats.interleavings;
    }
    // Minimal counterexamples agree too.
    const a = explore(sc, { bound });
    const b = explore(sc, { bound, reduce: false });
    assert.equal(a.preemptions, b.preemptions, what);
  }
  assert.ok(reducedRuns * 5 < fullRuns, `${reducedRuns} executions against ${fullRuns}`);
});

test('sleep sets alone keep every reachable state and cut executions; so do probes on top of state caching', () => {
  for (const [options, bound] of GRID.slice(0, 6)) {
    const sc = buildScenario(options);
    const full = explore(sc, { bound, reduce: false, iterative: false, collectStates: true });
    const sleep = explore(sc, { bound, reduce: false, sleepSets: true, iterative: false, collectStates: true });
    assert.deepEqual([...sleep.reachedStates!].sort(), [...full.reachedStates!].sort(), JSON.stringify(options));
    assert.ok(sleep.stats.interleavings <= full.stats.interleavings);
  }
  const sc = buildScenario({ helper: 'wp-clean', nestedWp: true });
  const cached = explore(sc, { bound: 2, iterative: false, collectStates: true });
  assert.ok(cached.stats.probes > 0 && cached.stats.probesSettled > 0 && cached.stats.slept > 0, JSON.stringify(cached.stats));
});

test('worker threads reach the same verdicts, and the same minimal counterexample, as one thread', async () => {
  for (const [options, bound] of [[{ helper: 'wp-clean', nestedWp: true, cpus: 3, pages: 3, writes: 1 }, 2], [{ arch: 'vivt', helper: 'strict', cpus: 2, pages: 3 }, 2]] as const) {
    const one = explore(buildScenario(options), { bound });
    const many = await exploreParallel(options, { bound, jobs: 2, handoffMs: 0 });
    assert.equal(many.verdict, one.verdict, JSON.stringify(options));
    assert.equal(many.schedule, one.schedule);
    if (many.verdict === 'holds') {
      assert.equal(many.stats.workers, 2);
      assert.ok(Math.abs(many.stats.states - one.stats.states) <= one.stats.states * 0.05, `${many.stats.states} states against ${one.stats.states}`);
    }
  }
});

test('limits stop a search with a partial verdict; progress is reported while it runs', () => {
  const sc = buildScenario({ helper: 'wp-clean', nestedWp: true, cpus: 3, pages: 3 });
  const progress: number[] = [];
  const r = explore(sc, { bound: 3, maxInterleavings: 3000, onProgress: (p) => progress.push(p.interleavings), progressMs: 1 });
  assert.equal(r.verdict, 'partial');
  assert.equal(r.stoppedBy, 'max-interleavings');
  assert.equal(r.stats.interleavings, 3000);
  assert.ok(progress.length > 0 && progress.every((n, i) => i === 0 || n >= progress[i - 1]!), String(progress));
  const timed = explore(sc, { bound: 3, maxSeconds: 0.05 });
  assert.equal(timed.verdict, 'partial');
  assert.equal(timed.stoppedBy, 'max-seconds');
  assert.ok(timed.stats.seconds < 2);
  // A violation found before the limit is reported as such.
  assert.equal(explore(buildScenario({ consumer: 'before-flush' }), { bound: 2, maxInterleavings: 100_000 }).verdict, 'fails');
});
