// One PTE-change mechanism (pte-modify.ts) under every walker that changes
// present PTEs: the mapping helpers, clear_refs, UFFDIO_WRITEPROTECT and
// PAGEMAP_SCAN offer the same step points, report their locals to the walk
// observer, and share the snapshot bug switch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  InvalidArgumentError, Machine, type MachineOptions, PAGE_IS_WRITTEN, PM_SCAN_WP_MATCHING, PTE_DIRTY, PTE_UFFD_WP, PTE_WRITE, STEP_NAMES, Step,
  type StepKind, Userfaultfd, type WalkLocals, clearRefsSoftDirty, pagemapScan, shmemFileOps, wpSharedMappingRange,
} from '../../src/index.js';

const PS = 4096;

function setup(opts: MachineOptions = {}) {
  const machine = new Machine({ cpus: 2, softDirty: true, ...opts });
  const file = machine.createMapping(4, { kind: 'shmem', ops: shmemFileOps() });
  const mm = machine.createMm();
  const vma = mm.mmap(file, { pages: 4, address: 512 * PS });
  const uffd = new Userfaultfd(mm);
  uffd.register(vma.start, 4 * PS);
  const [c0, c1] = machine.cpus as [typeof machine.cpus[0], typeof machine.cpus[0]];
  for (let p = 0; p < 4; p++) c0.write8(mm, vma.start + p * PS, 1);
  const steps: string[] = [];
  const walks: WalkLocals[] = [];
  const record = () => {
    machine.stepHook = (kind: StepKind, _a, _mm, vpn) => void steps.push(`${STEP_NAMES[kind]}${vpn >= 0 ? ` ${vpn - vma.start / PS}` : ''}`);
    machine.walkObserver = (w) => void walks.push(w);
  };
  const scan = () => pagemapScan(mm, { start: vma.start, end: vma.end, flags: PM_SCAN_WP_MATCHING, vecLen: 4, categoryMask: PAGE_IS_WRITTEN, returnMask: PAGE_IS_WRITTEN });
  return { machine, file, mm, vma, uffd, c0, c1, steps, walks, record, scan };
}

const perPte = (pages: number[]) => pages.flatMap((p) => [`PteRead ${p}`, `PteCleared ${p}`, `PteCommitted ${p}`]);

test('PAGEMAP_SCAN, UFFDIO_WRITEPROTECT and clear_refs change each PTE at the same step points as the helpers', () => {
  const s = setup();
  s.record();
  assert.equal(s.scan().regions.length, 1);
  assert.deepEqual(s.steps, perPte([0, 1, 2, 3]), 'the scan flushes under the table lock: no deferred-flush step');
  assert.equal(s.walks.length, 1);
  assert.equal(s.walks[0]!.total, 4);
  assert.equal(s.walks[0]!.pte.held & PTE_UFFD_WP, 0, 'the value modify_prot_start returned, before protection');

  s.steps.length = 0;
  s.uffd.writeProtect(s.vma.start + PS, 2 * PS, false);
  assert.deepEqual(s.steps, [...perPte([1, 2]), 'BeforeVmaFlush', 'AfterVmaFlush']);

  s.steps.length = 0;
  s.uffd.close();
  clearRefsSoftDirty(s.mm);
  assert.deepEqual(s.steps, [...perPte([0, 1, 2, 3]), 'BeforeVmaFlush', 'AfterVmaFlush']);
  assert.equal(s.walks.length, 3);
});

test('clear_refs and UFFDIO_WRITEPROTECT hold the flush-pending count until their deferred flush; a nested walker flushes its whole range', () => {
  const s = setup();
  const file2 = s.machine.createMapping(2);
  const dev = s.mm.mmap(file2, { pages: 2 });
  s.c1.write8(s.mm, dev.start, 1);
  const pending: number[] = [];
  let nested = 0;
  s.machine.stepHook = (kind) => {
    if (kind !== Step.BeforeVmaFlush) return;
    pending.push(s.mm.tlbFlushPending);
    // Another walker runs inside this window: it sees a nested flush.
    if (nested++ === 0) wpSharedMappingRange(file2, 0, 2);
  };
  s.uffd.writeProtect(s.vma.start, 4 * PS, true);
  assert.deepEqual(pending, [1, 2], 'the uffd walk, then the helper nested inside it');
  assert.equal(s.mm.tlbFlushPending, 0);
  assert.equal(s.c1.tlb.peek(s.mm.id, dev.start / PS), null);
});

test('the snapshot bug switch applies to every walker: PAGEMAP_SCAN then loses a D bit the MMU set after its snapshot', () => {
  for (const planted of [false, true]) {
    const s = setup({ pteFromSnapshot: planted });
    // A written (not protected), writable and clean PTE, as after a write whose D bit the helpers cleared.
    const vpn = s.vma.start / PS;
    s.mm.writePte(vpn, (s.mm.readPte(vpn) | PTE_WRITE) & ~(PTE_DIRTY | PTE_UFFD_WP));
    s.machine.stepHook = (kind, _a, _mm, v) => {
      if (kind === Step.PteRead && v === vpn) s.mm.writePte(vpn, s.mm.readPte(vpn) | PTE_DIRTY); // the MMU sets D
    };
    s.scan();
    s.machine.stepHook = null;
    assert.equal((s.mm.readPte(vpn) & PTE_DIRTY) !== 0, !planted, planted ? 'built from the snapshot: D lost' : 'built from modify_prot_start: D kept');
  }
});

test('a bad order is refused before anything changes', () => {
  const s = setup();
  assert.throws(() => wpSharedMappingRange(s.file, 0, 1, { order: 'sideways' as never }), InvalidArgumentError);
});

test('a walk that crosses into the next PTE table offers PteTableDone between them, after releasing the first', () => {
  const machine = new Machine({ cpus: 1 });
  const file = machine.createMapping(2, { kind: 'shmem', ops: shmemFileOps() });
  const mm = machine.createMm();
  const vma = mm.mmap(file, { pages: 2, address: 511 * PS });
  new Userfaultfd(mm).register(vma.start, 2 * PS);
  for (let p = 0; p < 2; p++) machine.cpus[0]!.write8(mm, vma.start + p * PS, 1);
  const steps: string[] = [];
  machine.stepHook = (kind, _a, _mm, vpn) => {
    steps.push(`${STEP_NAMES[kind]} ${vpn - vma.start / PS}`);
    if (kind === Step.PteTableDone) assert.equal(mm.pageTable.isLocked(vma.start / PS), false, 'the first table is unlocked');
  };
  pagemapScan(mm, { start: vma.start, end: vma.end, flags: PM_SCAN_WP_MATCHING, vecLen: 4, categoryMask: PAGE_IS_WRITTEN, returnMask: PAGE_IS_WRITTEN });
  assert.deepEqual(steps, [...perPte([0]), 'PteTableDone 1', ...perPte([1])]);
});
