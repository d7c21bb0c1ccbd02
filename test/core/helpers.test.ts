import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AccessBlockedError, Bitmap, Machine, PTE_DIRTY, PTE_WRITE, Step, VM_FAULT_OK, VM_FAULT_RETRY,
  type TraceEvent, cleanRecordSharedMappingRange, faultAround, newHelperStats, wpSharedMappingRange,
} from '../../src/index.js';
import { dirtyPgoffs, pteAt, staleWritableEntries } from './fixtures.js';

const PS = 4096;

test('wp followed by clean-record is an exact snapshot when page_mkwrite blocks writers (§1.6)', async () => {
  const machine = new Machine({ cpus: 3 });
  let locked = false;
  let release: () => void = () => {};
  let unlocked: Promise<void> = Promise.resolve();
  const bo = machine.createMapping(8, {
    ops: {
      fault: (vmf) => faultAround(vmf, 16, true),
      pfnMkwrite: (vmf) => {
        if (!locked) return VM_FAULT_OK;
        vmf.retryUntil = unlocked;
        return VM_FAULT_RETRY;
      },
    },
  });
  const mm = machine.createMm();
  const vma = mm.mmap(bo, { pages: 8 });
  const [c0, c1, c2] = machine.cpus as [typeof machine.cpus[0], typeof machine.cpus[0], typeof machine.cpus[0]];
  c0.write8(mm, vma.start + 0 * PS, 1);
  c1.write8(mm, vma.start + 2 * PS, 1);
  c2.read8(mm, vma.start + 5 * PS); // writable clean entry: would set D without faulting
  const written = new Set([0, 2]);

  locked = true;
  unlocked = new Promise<void>((r) => (release = r));
  // While the helpers run, every CPU tries to write at every step point.
  const blocked: number[] = [];
  machine.stepHook = (kind, actor) => {
    if (actor !== -1 || kind === Step.PteCleared) return;
    machine.stepHook = null;
    for (const [cpu, page] of [[c0, 0], [c1, 3], [c2, 5]] as const) {
      try {
        cpu.write8(mm, vma.start + page * PS, 9);
        written.add(page);
      } catch (e) {
        assert.ok(e instanceof AccessBlockedError);
        blocked.push(page);
      }
    }
    machine.stepHook = hook;
  };
  const hook = machine.stepHook;
  wpSharedMappingRange(bo, 0, 8);
  const bitmap = new Bitmap(8);
  cleanRecordSharedMappingRange(bo, 0, 8, 0, bitmap, { start: 0, end: 0 });
  machine.stepHook = null;
  assert.deepEqual(bitmap.toArray(), [...written].sort(), 'exactly the writes that completed');
  assert.ok(blocked.includes(3) && blocked.includes(5), `new writers blocked in mkwrite (${blocked})`);
  // Nothing new can land until the lock is dropped.
  assert.throws(() => c2.write8(mm, vma.start + 6 * PS, 1), AccessBlockedError);
  assert.deepEqual([...dirtyPgoffs(bo)], []);
  const late = c1.writeAsync(mm, vma.start + 3 * PS, new Uint8Array([7]));
  release();
  locked = false;
  await late;
  const next = new Bitmap(8);
  cleanRecordSharedMappingRange(bo, 0, 8, 0, next, { start: 0, end: 0 });
  assert.deepEqual(next.toArray(), [3], 'the blocked write landed after the unlock and is recorded next time');
});

function nestedWp(nestedFlushRule: boolean) {
  const machine = new Machine({ cpus: 2, nestedFlushRule });
  const bo = machine.createMapping(8);
  const mm = machine.createMm();
  const vma = mm.mmap(bo, { pages: 8 });
  for (let p = 0; p < 8; p++) machine.cpus[p % 2]!.write8(mm, vma.start + p * PS, 1);
  let stale: string[] | null = null;
  let inner = -1;
  let started = false;
  machine.stepHook = (kind, actor) => {
    if (actor !== -1 || kind !== Step.BeforeVmaFlush || started) return;
    started = true;
    // The first walk changed every PTE but has not flushed; a second one starts and finishes first.
    inner = wpSharedMappingRange(bo, 2, 4);
    stale = staleWritableEntries(machine, bo, 2, 4);
  };
  const outer = wpSharedMappingRange(bo, 0, 8);
  return { outer, inner, stale: stale as string[] | null, after: staleWritableEntries(machine, bo, 0, 8) };
}

test('two nested wp walks over overlapping ranges leave no writable TLB entry for a read-only PTE once the later one returns (§1.4)', () => {
  const r = nestedWp(true);
  assert.equal(r.outer, 8);
  assert.equal(r.inner, 0, 'the later walk finds nothing writable');
  assert.deepEqual(r.stale, [], 'yet it flushed its whole range because a flush was pending');
  assert.deepEqual(r.after, []);
});

test('without the nested-flush rule the later walk returns while stale writable entries survive', () => {
  const r = nestedWp(false);
  assert.equal(r.inner, 0);
  const pgoffs = r.stale!.map((s) => Number(s.split('pgoff ')[1])).sort();
  assert.deepEqual(pgoffs, [2, 3, 4, 5], `every pgoff of its range is still writable in some TLB: ${r.stale}`);
  assert.deepEqual(r.after, [], 'the first walk cleans up when it finally flushes');
});

test('totals, flush windows and IPI counts equal hand-computed values', () => {
  const machine = new Machine({ cpus: 3 });
  const events: TraceEvent[] = [];
  machine.trace = (e) => events.push(e);
  const bo = machine.createMapping(8);
  const a = machine.createMm();
  const b = machine.createMm();
  const va = a.mmap(bo, { pages: 8 });
  const vb = b.mmap(bo, { pgoff: 2, pages: 4 });
  const [c0, c1, c2] = machine.cpus as [typeof machine.cpus[0], typeof machine.cpus[0], typeof machine.cpus[0]];
  c0.write8(a, va.start + 1 * PS, 1); // fault: prefault pgoffs 1..7 in A (7 PTEs), D on 1
  c0.write8(a, va.start + 3 * PS, 1); // D on 3
  c1.write8(b, vb.start + 2 * PS, 1); // pgoff 4 via B: prefault B offsets 2..3 (2 PTEs), D on 4
  c2.read8(a, va.start + 0 * PS); // fault: pgoff 0 in A (1 PTE)
  events.length = 0;
  const stats = newHelperStats();
  const bitmap = new Bitmap(8);
  const range = { start: 0, end: 0 };
  const n = cleanRecordSharedMappingRange(bo, 0, 8, 0, bitmap, range, { stats });
  assert.equal(n, 3);
  assert.deepEqual(bitmap.toArray(), [1, 3, 4]);
  assert.deepEqual(range, { start: 1, end: 5 });
  const flushes = events.filter((e) => e.type === 'tlb-flush');
  // VMA A: window [pgoff 1, pgoff 4) on CPUs {0, 2} (A's cpumask): 2 IPIs, drops cpu0's entries for 1 and 3.
  // VMA B: window [pgoff 4, pgoff 5) on CPU {1}: 1 IPI, drops its entry.
  assert.deepEqual(flushes, [
    { type: 'tlb-flush', mm: a.id, start: va.start + 1 * PS, end: va.start + 4 * PS, targets: [0, 2], dropped: 2, initiator: -1 },
    { type: 'tlb-flush', mm: b.id, start: vb.start + 2 * PS, end: vb.start + 3 * PS, targets: [1], dropped: 1, initiator: -1 },
  ]);
  assert.deepEqual(stats, { vmasWalked: 2, vmasSkipped: 0, hugeSkipped: 0, hugeWarnings: 0, tlbFlushes: 2 });
  assert.deepEqual(machine.cpus.map((c) => c.counters.ipis), [1, 1, 1]);

  // wp: A has 8 writable PTEs, B has 2 → 10; running on cpu0 makes its flush local (1 IPI fewer).
  const before = machine.counters.ipis;
  assert.equal(wpSharedMappingRange(bo, 0, 8, { initiator: 0 }), 10);
  assert.equal(machine.counters.ipis - before, 2, 'cpu2 for A and cpu1 for B');
  assert.equal(wpSharedMappingRange(bo, 0, 8), 0, 'already read-only PTEs are not counted');

  // Strict clean of 2 dirty PTEs in A: one shootdown per PTE to A's cpumask {0, 2}.
  c0.write8(a, va.start + 6 * PS, 1); // wp fault (no mkwrite op) → writable + dirty
  c2.write8(a, va.start + 7 * PS, 1);
  const s2 = newHelperStats();
  const ipis = machine.counters.ipis;
  assert.equal(cleanRecordSharedMappingRange(bo, 0, 8, 0, new Bitmap(8), { start: 0, end: 0 }, { order: 'strict', stats: s2 }), 2);
  assert.equal(s2.tlbFlushes, 2);
  assert.equal(machine.counters.ipis - ipis, 4);
});

test('huge entries are skipped and counted, never split, and a writable or dirty one is reported', () => {
  const machine = new Machine({ cpus: 1 });
  const bo = machine.createMapping(1024);
  const mm = machine.createMm();
  const vma = mm.mmap(bo, { pages: 1024 });
  mm.installHugePmd(vma.start, bo.pfnAt(0), true, true);
  machine.cpus[0]!.write8(mm, vma.start + 600 * PS, 1);
  const stats = newHelperStats();
  const bitmap = new Bitmap(1024);
  assert.equal(cleanRecordSharedMappingRange(bo, 0, 1024, 0, bitmap, { start: 0, end: 0 }, { stats }), 1);
  assert.deepEqual(bitmap.toArray(), [600]);
  assert.equal(stats.hugeSkipped, 1);
  assert.equal(stats.hugeWarnings, 1);
  assert.equal(machine.counters.hugeEntriesSkipped, 1);
  assert.ok(pteAt(vma, 10) & PTE_DIRTY && pteAt(vma, 10) & PTE_WRITE, 'the huge leaf is untouched');
  assert.equal(mm.pageTable.pteTableOf(vma.start / PS), null, 'and not split into a PTE table');
});

test('a private mapping sorting first: the default walk goes on, the kernel-faithful one stops and misses the write (§6.A6)', () => {
  for (const walkStopsAtSkippedVma of [false, true]) {
    const machine = new Machine({ walkStopsAtSkippedVma });
    const bo = machine.createMapping(4);
    const priv = machine.createMm().mmap(bo, { pages: 4, prot: 'r', shared: false });
    const mm = machine.createMm();
    const shared = mm.mmap(bo, { pages: 4 });
    machine.cpus[0]!.read8(priv.mm, priv.start);
    machine.cpus[1]!.write8(mm, shared.start + PS, 1);
    const stats = newHelperStats();
    const bitmap = new Bitmap(4);
    cleanRecordSharedMappingRange(bo, 0, 4, 0, bitmap, { start: 0, end: 0 }, { stats });
    if (walkStopsAtSkippedVma) {
      assert.deepEqual(bitmap.toArray(), [], 'the walk ended at the private VMA');
      assert.ok(pteAt(shared, 1) & PTE_DIRTY, 'the shared PTE was never cleaned');
      assert.equal(stats.vmasWalked, 0);
    } else {
      assert.deepEqual(bitmap.toArray(), [1]);
      assert.deepEqual([stats.vmasSkipped, stats.vmasWalked], [1, 1]);
    }
  }
});

test('the empty-range sentinel is nr, not the bitmap size: with firstIndex != bitmapPgoff the start under-shoots (§1.2 quirk)', () => {
  const machine = new Machine();
  const bo = machine.createMapping(16);
  const mm = machine.createMm();
  const vma = mm.mmap(bo, { pages: 16 });
  machine.cpus[0]!.write8(mm, vma.start + 10 * PS, 1);
  const range = { start: 0, end: 0 };
  const bitmap = new Bitmap(16);
  assert.equal(cleanRecordSharedMappingRange(bo, 8, 4, 0, bitmap, range), 1);
  assert.deepEqual(bitmap.toArray(), [10]);
  assert.deepEqual(range, { start: 4, end: 11 });
  // A non-empty range on entry is kept and widened.
  machine.cpus[0]!.write8(mm, vma.start + 9 * PS, 1);
  const r2 = { start: 10, end: 11 };
  cleanRecordSharedMappingRange(bo, 8, 4, 0, bitmap, r2);
  assert.deepEqual(r2, { start: 9, end: 11 });
});

test('mmu notifiers bracket every helper change with the VMA window, and the flush-pending counter returns to zero', () => {
  const machine = new Machine();
  const bo = machine.createMapping(4);
  const mm = machine.createMm();
  const vma = mm.mmap(bo, { pages: 4 });
  machine.cpus[0]!.write8(mm, vma.start, 1);
  const log: string[] = [];
  mm.subscribe({
    invalidateRangeStart: (r) => log.push(`start ${r.event} ${(r.start - vma.start) / PS}-${(r.end - vma.start) / PS} pending=${mm.tlbFlushPending}`),
    invalidateRangeEnd: (r) => log.push(`end ${(r.start - vma.start) / PS}-${(r.end - vma.start) / PS} pending=${mm.tlbFlushPending}`),
  });
  wpSharedMappingRange(bo, 1, 2);
  assert.deepEqual(log, ['start protection-page 1-3 pending=0', 'end 1-3 pending=1']);
  assert.equal(mm.tlbFlushPending, 0);
});

test('a hook that throws inside a walk still gets the VMA flushed and the pending count dropped', () => {
  const machine = new Machine({ cpus: 2 });
  const bo = machine.createMapping(4);
  const mm = machine.createMm();
  const vma = mm.mmap(bo, { pages: 4 });
  for (let p = 0; p < 4; p++) machine.cpus[1]!.write8(mm, vma.start + p * PS, 1);
  machine.stepHook = (kind, actor) => {
    if (actor === -1 && kind === Step.PteCommitted) throw new Error('abort');
  };
  assert.throws(() => wpSharedMappingRange(bo, 0, 4), /abort/);
  machine.stepHook = null;
  assert.equal(mm.tlbFlushPending, 0);
  assert.deepEqual(staleWritableEntries(machine, bo, 0, 4), [], 'the PTE it changed is not left writable in a TLB');
});

test('mprotect that would split a VMA during a helper walk is refused; one that changes nothing is fine', () => {
  const machine = new Machine();
  const bo = machine.createMapping(8);
  const mm = machine.createMm();
  const vma = mm.mmap(bo, { pages: 8 });
  machine.cpus[0]!.write8(mm, vma.start + 6 * PS, 1);
  const outcomes: string[] = [];
  let done = false;
  machine.stepHook = (kind, actor) => {
    if (done || actor !== -1 || kind !== Step.BeforeVmaFlush) return;
    done = true;
    mm.mprotect(vma.start, 2 * PS, 'rw'); // no change: no split
    outcomes.push('noop ok');
    try {
      mm.mprotect(vma.start, 2 * PS, 'r');
    } catch (e) {
      outcomes.push((e as Error).name);
    }
  };
  const bitmap = new Bitmap(8);
  cleanRecordSharedMappingRange(bo, 0, 8, 0, bitmap, { start: 0, end: 0 });
  machine.stepHook = null;
  assert.deepEqual(outcomes, ['noop ok', 'WouldDeadlockError']);
  assert.deepEqual(bitmap.toArray(), [6]);
  assert.equal(mm.vmas.length, 1);
});
