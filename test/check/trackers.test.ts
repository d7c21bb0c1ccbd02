// The userspace trackers under the explorer (docs/fidelity.md): does a
// scan-and-protect keep guarantees (a) and (b)? Each verdict is established
// over every interleaving within the bound, none staged by hand; and a bug
// planted in the scan path must be found.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ExploreResult, type ScenarioOptions, ScenarioError, buildScenario, explore, replaySchedule, traceSchedule } from '../../src/check/index.js';

function check(options: Partial<ScenarioOptions>, bound = 2): ExploreResult {
  return explore(buildScenario(options), { bound });
}

function assertHolds(r: ExploreResult): void {
  assert.equal(r.verdict, 'holds', r.violation?.message);
  assert.ok(r.stats.complete > 0, 'something was explored');
}

function assertFails(options: Partial<ScenarioOptions>, bound: number, invariant: string, preemptions: number): ExploreResult {
  const r = check(options, bound);
  assert.equal(r.verdict, 'fails', JSON.stringify(options));
  assert.equal(r.violation?.invariant, invariant, r.violation?.message);
  assert.equal(r.preemptions, preemptions);
  assert.deepEqual(replaySchedule(buildScenario(options), r.schedule!).violation, r.violation);
  return r;
}

test('uffd-wp: PAGEMAP_SCAN with WP_MATCHING keeps (a) and (b) and loses no write, with reads, on sw-dirty, over rounds and 3 CPUs', () => {
  const r = check({ helper: 'uffd-wp' });
  assertHolds(r);
  assert.ok(r.stats.faults.wp > 0, 'writes to protected pages took the async uffd-wp fault');
  assertHolds(check({ helper: 'uffd-wp', reads: true }));
  assertHolds(check({ helper: 'uffd-wp', arch: 'sw-dirty' }));
  assertHolds(check({ helper: 'uffd-wp', rounds: 2, writes: 1 }, 3));
  // Pages 1 and 2 share a PTE table (page 0 has one of its own): a fault there waits while the scan holds it.
  const three = check({ helper: 'uffd-wp', cpus: 3, pages: 3, writes: 1 });
  assertHolds(three);
  assert.ok(three.stats.blockedAttempts > 0, 'faults that waited for the PTE lock the scan holds were explored');
});

test('uffd-wp: a scan that protects without its TLB flush is found (a stale writable entry writes past the protection)', () => {
  const r = assertFails({ helper: 'uffd-wp', plants: { scanWithoutTlbFlush: true } as ScenarioOptions['plants'] }, 2, 'lost-write', 0);
  assert.match(r.violation!.message, /cpu1 last wrote 0x04/);
});

test('soft-dirty: a write between the pagemap read and clear_refs is neither reported nor left soft-dirty (guarantee b, one preemption)', () => {
  const r = assertFails({ helper: 'soft-dirty' }, 2, 'guarantee-b', 1);
  const cx = traceSchedule(buildScenario({ helper: 'soft-dirty' }), r.schedule!);
  // The write lands after the pagemap read and before clear_refs reaches its page (between the two
  // calls, or while clear_refs is in an earlier PTE table): clear_refs then resets it unseen.
  const w = cx.steps.find((s) => s.actor === 'cpu1' && s.text.includes('[starts inside the suspended op]'));
  assert.ok(w, 'cpu1 writes inside the scan');
  assert.ok(cx.steps.slice(0, cx.steps.indexOf(w)).some((s) => s.text.includes('[BetweenCalls]')), 'after the pagemap read');
  // Without preemptions (nothing runs inside the scan) it holds; guarantee (a) never fails.
  assertHolds(check({ helper: 'soft-dirty' }, 0));
  assertHolds(check({ helper: 'soft-dirty', ignore: ['guarantee-b', 'lost-write'] }));
});

test('soft-dirty: clear_refs without its TLB flush is found at bound 0, where the correct scan holds', () => {
  assertFails({ helper: 'soft-dirty', plants: { scanWithoutTlbFlush: true } as ScenarioOptions['plants'] }, 0, 'lost-write', 0);
});

test('B1: WP_MATCHING on an unregistered VMA leaves a writable PTE with its uffd-wp bit; the fixed scan skips that VMA', () => {
  const buggy = assertFails({ helper: 'uffd-wp', unregisteredTail: true, plants: { scanProtectsUnregistered: true } as ScenarioOptions['plants'] }, 2, 'uffd-wp-writable', 0);
  assert.equal(buggy.violation!.pgoff, 1, 'the unregistered page');
  assertHolds(check({ helper: 'uffd-wp', unregisteredTail: true }));
});

test('B5: a page unmapped and mapped again must read soft-dirty after its VMA merges back; a merge that drops the flag loses the write', () => {
  assertFails({ helper: 'soft-dirty', remap: true, plants: { mergeDropsSoftDirty: true } as ScenarioOptions['plants'] }, 0, 'lost-write', 0);
  assertHolds(check({ helper: 'soft-dirty', remap: true }, 0));
});

test('tracker scenarios refuse options that do not apply to them', () => {
  assert.throws(() => buildScenario({ helper: 'uffd-wp', arch: 'vivt' }), ScenarioError);
  assert.throws(() => buildScenario({ helper: 'soft-dirty', offsets: true }), ScenarioError);
  assert.throws(() => buildScenario({ helper: 'uffd-wp', nestedWp: true }), ScenarioError);
  assert.throws(() => buildScenario({ helper: 'uffd-wp', remap: true }), /remap needs --helper soft-dirty/);
  assert.throws(() => buildScenario({ helper: 'clean-record', unregisteredTail: true }), /unregisteredTail needs --helper uffd-wp/);
});
