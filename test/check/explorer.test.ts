// The explorer itself: counts, bounds, determinism, replay of counterexamples,
// the state table (reduction.test.ts compares the reductions with the unreduced search).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CONTINUE, Outcome, PRUNED, ScheduleError, StateHasher, VisitedStates, buildScenario, explore, formatCounterexample,
  formatSchedule, parseSchedule, replaySchedule, traceSchedule,
} from '../../src/check/index.js';

const BEFORE_FLUSH = buildScenario({ consumer: 'before-flush' });

test('counts are reported and add up', () => {
  const r = explore(buildScenario(), { bound: 2 });
  const s = r.stats;
  assert.equal(s.interleavings, s.complete + s.pruned);
  assert.ok(s.pruned > 0 && s.states > 0 && s.decisionPoints >= s.states);
  assert.ok(s.maxDepth > 0 && s.seconds > 0 && s.perSecond > 0);
  assert.ok(s.faults.missing > 0 && s.tlbFlushes > 0);
});

test('bound 0 runs exactly the top-level orders of the ops: 4!/(1!·1!·2!) = 12 for two single writes and [clean, consume]', () => {
  const sc = buildScenario({ writes: 1 });
  const r = explore(sc, { bound: 0, reduce: false, iterative: false });
  assert.equal(r.verdict, 'holds');
  assert.equal(r.stats.interleavings, 12);
  assert.equal(r.stats.complete, 12);
  assert.equal(r.stats.states, 0, 'no state table without reduction');
});

test('exploration is deterministic: same scenario, same counts and the same counterexample', () => {
  const a = explore(BEFORE_FLUSH, { bound: 2 });
  const b = explore(BEFORE_FLUSH, { bound: 2 });
  const strip = (r: typeof a) => ({ ...r, stats: { ...r.stats, seconds: 0, perSecond: 0 } });
  assert.deepEqual(strip(a), strip(b));
});

test('a counterexample replays to the same failure, and its trace shows the racing write', () => {
  const r = explore(BEFORE_FLUSH, { bound: 2 });
  assert.equal(r.schedule, '0,-2,0,1,-2,k0,-6,1,-2,k0');
  const replay = replaySchedule(BEFORE_FLUSH, r.schedule!);
  assert.equal(replay.outcome, Outcome.Violation);
  assert.deepEqual(replay.violation, r.violation);
  assert.equal(replay.execution.preemptions, r.preemptions);

  const cx = traceSchedule(BEFORE_FLUSH, r.schedule!);
  assert.deepEqual(cx.violation, r.violation);
  const consume = cx.steps.findIndex((s) => s.text.startsWith('consumer copies pages recorded so far {0,1} before the deferred TLB flush'));
  const racing = cx.steps[consume + 1]!;
  assert.ok(consume > 0, 'the early consumer is a step of its own');
  assert.equal(racing.actor, 'cpu1');
  assert.match(racing.text, /^write 0x04 to pgoff 1 byte 1 \[starts inside the suspended op\] → the store is done$/);
  assert.deepEqual(racing.changes, [{ what: 'memory p1', before: '00 03', after: '00 04' }]);
  assert.deepEqual(racing.notes, ['TLB hit: the access touched no PTE']);
  const flush = cx.steps[consume + 2]!;
  assert.deepEqual(flush.changes.map((c) => `${c.what}: ${c.before} → ${c.after}`), ['tlb cpu0 p0: P W D A (stale) → -', 'tlb cpu1 p1: P W D A (stale) → -']);
  const text = formatCounterexample(cx);
  assert.equal(text[0], 'VIOLATION lost-write: pgoff 1 byte 1: the device copy has 0x03 but cpu1 last wrote 0x04');
  assert.equal(text[1], 'schedule (1 preemption): 0,-2,0,1,-2,k0,-6,1,-2,k0');
});

test('replaying a schedule that does not fit the scenario is refused with the decision that failed', () => {
  assert.throws(() => parseSchedule(BEFORE_FLUSH, '0,k7'), ScheduleError);
  assert.throws(() => parseSchedule(BEFORE_FLUSH, '0,-0x'), ScheduleError);
  // At the first top-level decision nothing is suspended, so "continue" is not a choice.
  assert.throws(() => replaySchedule(BEFORE_FLUSH, '-'), /decision 1: '-' cannot run here \(enabled: 0 1 k0\)/);
  // Past the end of a schedule the default choices apply: an empty schedule is the first interleaving.
  assert.equal(replaySchedule(BEFORE_FLUSH, '').outcome, Outcome.Complete);
});

test('schedules round-trip through text, continues run-length encoded', () => {
  const decisions = [0, CONTINUE, CONTINUE, 2, CONTINUE, 1];
  const text = formatSchedule(BEFORE_FLUSH, decisions);
  assert.equal(text, '0,-2,k0,-,1');
  assert.deepEqual(parseSchedule(BEFORE_FLUSH, text), decisions);
});

test('larger bounds explore more, and the state space saturates', () => {
  const sc = buildScenario();
  const counts = [0, 1, 2, 3].map((bound) => explore(sc, { bound, iterative: false }).stats.states);
  assert.ok(counts[0]! < counts[1]! && counts[1]! < counts[2]! && counts[2]! <= counts[3]!, String(counts));
});

test('the visited table keeps the largest budget per state and survives growth', () => {
  const table = new VisitedStates();
  const h = new StateHasher();
  const at = (i: number): StateHasher => {
    h.begin();
    h.word(i);
    return h;
  };
  for (let i = 0; i < 10_000; i++) assert.equal(table.visit(at(i), 1), 0);
  assert.equal(table.size, 10_000);
  assert.equal(table.visit(at(42), 1), PRUNED, 'same budget: prune');
  assert.equal(table.visit(at(42), 0), PRUNED, 'less budget: prune');
  assert.equal(table.visit(at(42), 2), 0, 'more budget: explore again');
  assert.equal(table.visit(at(42), 2), PRUNED);
  assert.equal(table.size, 10_000);
});
