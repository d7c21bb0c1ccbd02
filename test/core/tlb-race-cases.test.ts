// The four cases of kernel-semantics §1.7 (the seed thread's TLB race), each
// staged with the step hook at the exact point the case names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AccessBlockedError, Bitmap, Machine, PTE_DIRTY, PTE_WRITE, Step, type StepKind,
  type HelperOptions, cleanRecordSharedMappingRange, wpSharedMappingRange,
} from '../../src/index.js';
import { pteAt } from './fixtures.js';

function setup() {
  const machine = new Machine({ cpus: 2 });
  const bo = machine.createMapping(4, { name: 'bo' });
  const mm = machine.createMm();
  const vma = mm.mmap(bo, { pages: 4 });
  const [writer, other] = machine.cpus as [typeof machine.cpus[0], typeof machine.cpus[0]];
  const va = (p: number) => vma.start + p * machine.pageSize;
  const clean = (opts: HelperOptions = {}) => {
    const bitmap = new Bitmap(4);
    const range = { start: 0, end: 0 };
    const n = cleanRecordSharedMappingRange(bo, 0, 4, 0, bitmap, range, opts);
    return { n, bits: bitmap.toArray(), range };
  };
  /** Run `action` once, at the first step of `kind` (for vpn when given) taken by the helper. */
  const at = (kind: StepKind, action: () => void, pgoff?: number) => {
    let done = false;
    machine.stepHook = (k, actor, _mm, vpn) => {
      if (done || actor !== -1 || k !== kind) return;
      if (pgoff !== undefined && vpn !== va(pgoff) / machine.pageSize) return;
      done = true;
      action();
    };
    return () => done;
  };
  return { machine, bo, mm, vma, writer, other, va, clean, at };
}

test('case 1: a write before the walker scans the PTE leaves it dirty, so it is recorded and cleaned', () => {
  const { vma, writer, mm, va, clean } = setup();
  writer.write32(mm, va(0), 1);
  assert.ok(pteAt(vma, 0) & PTE_DIRTY);
  const r = clean();
  assert.deepEqual(r.bits, [0]);
  assert.equal(r.n, 1);
  assert.deepEqual(r.range, { start: 0, end: 1 });
  assert.equal(pteAt(vma, 0) & PTE_DIRTY, 0, 'the walker cleaned the PTE');
});

test('case 2: a write after the TLB flush refills from the clean PTE and sets D again, recorded next time', () => {
  const { vma, writer, mm, va, clean, at } = setup();
  writer.write32(mm, va(0), 1);
  const setsBefore = () => writer.counters.dirtyBitSets;
  let sets = 0;
  const ran = at(Step.AfterVmaFlush, () => {
    sets = setsBefore();
    assert.equal(writer.tlb.peek(mm.id, va(0) / 4096), null, 'the flush dropped the dirty entry');
    writer.write32(mm, va(0), 2);
  });
  const first = clean();
  assert.ok(ran());
  assert.deepEqual(first.bits, [0]);
  assert.equal(writer.counters.dirtyBitSets, sets + 1, 'the refill set D in memory');
  assert.ok(pteAt(vma, 0) & PTE_DIRTY, 'PTE dirty again after the call');
  const second = clean();
  assert.deepEqual(second.bits, [0], 'the next call records the second write');
});

test('case 3: a write after the scan of a clean PTE but before the flush sets D in the PTE, recorded next time', () => {
  const { vma, writer, mm, va, clean, at } = setup();
  writer.write32(mm, va(0), 1);
  assert.equal(writer.read32(mm, va(1)), 0); // cached writable but clean
  const e = writer.tlb.peek(mm.id, va(1) / 4096)!;
  assert.ok(e & PTE_WRITE && !(e & PTE_DIRTY));
  const ran = at(Step.BeforeVmaFlush, () => writer.write32(mm, va(1), 7));
  const first = clean();
  assert.ok(ran());
  assert.deepEqual(first.bits, [0], 'page 1 was clean when scanned');
  assert.ok(pteAt(vma, 1) & PTE_DIRTY, 'the write set D in the in-memory PTE');
  assert.deepEqual(clean().bits, [1]);
});

test('case 4: a write after the clean but before the flush, through a stale dirty TLB entry, leaves the PTE clean but the page is already recorded', () => {
  const { vma, writer, mm, va, clean, at, bo } = setup();
  writer.write32(mm, va(0), 1);
  const dSets = writer.counters.dirtyBitSets;
  const hits = writer.counters.tlbHits;
  const ran = at(Step.PteCommitted, () => writer.write32(mm, va(0), 0xc0ffee), 0);
  const first = clean();
  assert.ok(ran());
  assert.equal(writer.counters.dirtyBitSets, dSets, 'the racing write touched no PTE');
  assert.equal(writer.counters.tlbHits, hits + 1, 'it went through the stale entry');
  assert.equal(pteAt(vma, 0) & PTE_DIRTY, 0, 'the PTE stays clean');
  assert.deepEqual(first.bits, [0], 'but the bitmap bit was set when the PTE was cleaned');
  // A consumer acting after return (after the flush) sees the racing write's data.
  assert.equal(new DataView(bo.page(0)!.buffer, bo.page(0)!.byteOffset).getUint32(0, true), 0xc0ffee);
  assert.deepEqual(clean().bits, [], 'nothing is left for the next call: the first one owns the write');
});

test('case 4 under the strict variant: the stale entry is gone before the store, so the racing write must fault and wait', () => {
  const { vma, writer, mm, va, clean, at } = setup();
  writer.write32(mm, va(0), 1);
  let blocked: unknown = null;
  const ran = at(Step.PteCleared, () => {
    try {
      writer.write32(mm, va(0), 2);
    } catch (e) {
      blocked = e;
    }
  }, 0);
  const first = clean({ order: 'strict' });
  assert.ok(ran());
  assert.ok(blocked instanceof AccessBlockedError && blocked.reason === 'ptl', 'faulted on the cleared PTE and waits for the PTE lock');
  assert.deepEqual(first.bits, [0]);
  writer.write32(mm, va(0), 2); // the retry after the lock is dropped
  assert.ok(pteAt(vma, 0) & PTE_DIRTY);
  assert.deepEqual(clean().bits, [0]);
});

test('between the snapshot and modify_prot_start the MMU can still set D: the new PTE is built from what modify_prot_start returned (§6.B3 class)', () => {
  for (const pteFromSnapshot of [false, true]) {
    const machine = new Machine({ cpus: 2, pteFromSnapshot });
    const bo = machine.createMapping(4, { name: 'bo' });
    const mm = machine.createMm();
    const vma = mm.mmap(bo, { pages: 4 });
    const writer = machine.cpus[0]!;
    assert.equal(writer.read32(mm, vma.start), 0); // a writable clean TLB entry: a write sets D without faulting
    let raced = false;
    machine.stepHook = (kind, actor) => {
      if (actor !== -1 || kind !== Step.PteRead || raced) return;
      raced = true;
      writer.write32(mm, vma.start, 5);
    };
    assert.equal(wpSharedMappingRange(bo, 0, 1), 1);
    machine.stepHook = null;
    assert.ok(raced);
    const bitmap = new Bitmap(4);
    cleanRecordSharedMappingRange(bo, 0, 4, 0, bitmap, { start: 0, end: 0 });
    if (pteFromSnapshot) {
      assert.equal(pteAt(vma, 0) & PTE_DIRTY, 0, 'built from the clean snapshot: the D bit set in between is gone');
      assert.deepEqual(bitmap.toArray(), [], 'so the write is never recorded');
    } else {
      assert.deepEqual(bitmap.toArray(), [0], 'the D bit set between the snapshot and modify_prot_start is kept and recorded');
    }
  }
});
