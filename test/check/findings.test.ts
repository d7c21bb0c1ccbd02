// The fidelity findings (docs/fidelity.md), each established by the explorer
// over every interleaving within the bound — none is staged by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ExploreResult, type ScenarioOptions, buildScenario, explore, replaySchedule } from '../../src/check/index.js';

const BOUND = 2;

function check(options: Partial<ScenarioOptions>, bound = BOUND): ExploreResult {
  return explore(buildScenario(options), { bound });
}

function assertHolds(r: ExploreResult): void {
  assert.equal(r.verdict, 'holds', r.violation?.message);
  assert.equal(r.violation, null);
  assert.equal(r.schedule, null);
  assert.ok(r.stats.complete > 0 && r.stats.states > 0, 'something was explored');
}

/** Found, with a minimal number of preemptions, and its schedule replays to the same violation. */
function assertFails(options: Partial<ScenarioOptions>, invariant: string, preemptions: number): ExploreResult {
  const r = check(options);
  assert.equal(r.verdict, 'fails');
  assert.equal(r.violation?.invariant, invariant, r.violation?.message);
  assert.equal(r.preemptions, preemptions);
  const again = replaySchedule(buildScenario(options), r.schedule!);
  assert.deepEqual(again.violation, r.violation);
  return r;
}

test('x86 + clean-record, consumer after return: every invariant holds within the bound', () => {
  const r = check({ arch: 'x86', helper: 'clean-record' });
  assertHolds(r);
  assert.ok(r.stats.blockedAttempts > 0, 'interleavings where a fault waited for the PTE lock were explored');
  // The in-flight-store rule (execution.ts): without it, a helper nested (directly, or under another
  // CPU's access) inside a CPU's TlbFill step lets a flush and the consumer complete before that
  // CPU's store lands — a lost write no machine can produce. These scenarios reported one before.
  assertHolds(check({ arch: 'x86', helper: 'clean-record', rounds: 2, writes: 1 }, 3));
  assertHolds(check({ arch: 'x86', helper: 'wp-clean', writes: 2 }, 3));
});

test('x86 + clean-record, consumer reading recorded pages before the TLB flush: a lost write is found', () => {
  const r = assertFails({ arch: 'x86', helper: 'clean-record', consumer: 'before-flush' }, 'lost-write', 1);
  assertHolds(check({ arch: 'x86', helper: 'clean-record', consumer: 'before-flush' }, 0));
  // Guarantees (a) and (b) themselves still hold: the write was recorded, then consumed too early.
  assert.match(r.violation!.message, /device copy has 0x03 but cpu1 last wrote 0x04/);
});

test('vivt + deferred-flush clean-record: a lost write is found; vivt + strict with the TLB flushed first: holds', () => {
  assertFails({ arch: 'vivt', helper: 'clean-record' }, 'lost-write', 1);
  assertHolds(check({ arch: 'vivt', helper: 'strict-tlb-first' }));
  assertHolds(check({ arch: 'vivt', helper: 'strict-tlb-first', consumer: 'before-flush' }));
});

test('vivt + strict in the seed thread\'s order: a write between flush_cache_page and ptep_clear_flush stays in a cache line and is lost', () => {
  const r = assertFails({ arch: 'vivt', helper: 'strict' }, 'lost-write', 1);
  assert.match(r.schedule!, /^0,-2,0,1,-2,k0,-5,1,/, 'cpu1 writes at the CacheFlushed step of pgoff 1');
});

test('nested wp walks without the nested-flush rule: a stale writable TLB entry is found; with the rule: holds', () => {
  const r = assertFails({ helper: 'wp-clean', nestedWp: true, nestedFlushRule: false }, 'stale-writable-tlb', 1);
  assert.match(r.violation!.message, /^wp \[1,2\) returned while cpu1 still holds a writable TLB entry for read-only pgoff 1$/);
  assertHolds(check({ helper: 'wp-clean', nestedWp: true, nestedFlushRule: true }));
});

test('a walk that stops at a skipped private VMA misses a dirty page; the default walk holds', () => {
  const r = assertFails({ privateVma: true, walkStops: true }, 'guarantee-a', 0);
  assert.match(r.violation!.message, /^pgoff 0 had a dirty PTE when clean-record started but is not recorded/);
  assertHolds(check({ privateVma: true, walkStops: false }));
});

test('sw-dirty + clean-record holds, with the first write to each clean page taken as a fault', () => {
  const sw = check({ arch: 'sw-dirty', helper: 'clean-record' });
  assertHolds(sw);
  assert.ok(sw.stats.faults.dirty > 0, 'software set D in dirty faults');
  assert.equal(sw.stats.dirtyBitSets, 0, 'no hardware dirty-bit updates');
  const hw = check({ arch: 'x86', helper: 'clean-record' });
  assert.equal(hw.stats.faults.dirty, 0);
  assert.ok(hw.stats.dirtyBitSets > 0);
});

test('both strict orders and wp-clean hold on x86 too', () => {
  assertHolds(check({ helper: 'strict' }));
  assertHolds(check({ helper: 'strict-tlb-first' }));
  assertHolds(check({ helper: 'wp-clean' }));
});
