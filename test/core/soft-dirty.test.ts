import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  InvalidArgumentError, Machine, PAGE_IS_SOFT_DIRTY, PM_PRESENT, PM_SOFT_DIRTY, PTE_SOFT_DIRTY, PTE_WRITE,
  clearRefsSoftDirty, pagemapScan, readPagemap, shmemFileOps,
} from '../../src/index.js';

const PS = 4096;

function setup(pages = 8) {
  const machine = new Machine({ cpus: 2, softDirty: true });
  const file = machine.createMapping(pages, { kind: 'shmem', ops: shmemFileOps() });
  const mm = machine.createMm();
  const vma = mm.mmap(file, { pages });
  const [c0, c1] = machine.cpus as [typeof machine.cpus[0], typeof machine.cpus[0]];
  const dirty = () => [...readPagemap(mm, vma.start, pages)].flatMap((e, i) => (e & PM_SOFT_DIRTY ? [i] : []));
  return { machine, file, mm, vma, c0, c1, dirty };
}

test('a new mapping reads soft-dirty as a whole; clear_refs resets it; a write sets it for that page only', () => {
  const { mm, vma, c0, dirty } = setup();
  assert.deepEqual(dirty(), [0, 1, 2, 3, 4, 5, 6, 7]);
  c0.write8(mm, vma.start + 2 * PS, 1);
  clearRefsSoftDirty(mm);
  assert.deepEqual(dirty(), []);
  assert.equal(mm.readPte(vma.start / PS + 2) & (PTE_WRITE | PTE_SOFT_DIRTY), 0, 'write-protected and clean');
  c0.write8(mm, vma.start + 2 * PS, 2);
  c0.write8(mm, vma.start + 6 * PS, 2);
  assert.deepEqual(dirty(), [2, 6]);
  const e = readPagemap(mm, vma.start + 2 * PS, 1)[0]!;
  assert.ok(e & PM_PRESENT);
});

test('clear_refs flushes stale writable TLB entries, so a write through one cannot skip the fault', () => {
  const { mm, vma, c0, c1, dirty } = setup();
  c1.write8(mm, vma.start, 1); // c1 caches a writable, dirty entry
  clearRefsSoftDirty(mm);
  assert.equal(c1.tlb.peek(mm.id, vma.start / PS), null);
  c1.write8(mm, vma.start, 2);
  assert.deepEqual(dirty(), [0]);
  void c0;
});

test('after clear_refs a read fault maps read-only, so the later write is still seen', () => {
  const { mm, vma, c0, dirty } = setup();
  clearRefsSoftDirty(mm);
  c0.read8(mm, vma.start + 3 * PS);
  assert.equal(mm.readPte(vma.start / PS + 3) & PTE_WRITE, 0);
  c0.write8(mm, vma.start + 3 * PS, 1);
  assert.deepEqual(dirty(), [3]);
});

test('mprotect keeps soft-dirty bits; munmap + mmap makes the new mapping dirty as a whole', () => {
  const { mm, vma, file, c0, dirty } = setup();
  const start = vma.start;
  clearRefsSoftDirty(mm);
  c0.write8(mm, start + PS, 1);
  mm.mprotect(start + 4 * PS, 4 * PS, 'r');
  assert.equal(mm.vmas.length, 2);
  mm.mprotect(start + 4 * PS, 4 * PS, 'rw');
  assert.equal(mm.vmas.length, 1, 'equal neighbours merge again');
  assert.deepEqual(dirty(), [1]);
  mm.munmap(start + 4 * PS, 4 * PS);
  mm.mmap(file, { pages: 3, pgoff: 5, address: start + 5 * PS }); // not adjacent: no merge
  assert.deepEqual(dirty(), [1, 5, 6, 7], 'the new mapping reads dirty as a whole');
});

test('merging a new mapping into a reset one marks the whole merged VMA soft-dirty (the false positives of merging)', () => {
  const { mm, vma, file, dirty } = setup();
  const start = vma.start;
  mm.munmap(start + 4 * PS, 4 * PS);
  clearRefsSoftDirty(mm);
  assert.deepEqual(dirty(), []);
  mm.mmap(file, { pages: 4, pgoff: 4, address: start + 4 * PS }); // adjacent, contiguous pgoffs: one VMA again
  assert.equal(mm.vmas.length, 1);
  assert.deepEqual(dirty(), [0, 1, 2, 3, 4, 5, 6, 7]);
});

test('PAGEMAP_SCAN reports soft-dirty pages; clear_refs skips PFN-map VMAs; a kernel without it refuses', () => {
  const { machine, mm, vma, c0 } = setup();
  clearRefsSoftDirty(mm);
  c0.write8(mm, vma.start + 5 * PS, 1);
  const r = pagemapScan(mm, { start: vma.start, end: vma.end, vecLen: 10, categoryMask: PAGE_IS_SOFT_DIRTY, returnMask: PAGE_IS_SOFT_DIRTY });
  assert.deepEqual(r.regions.map((g) => (g.start - vma.start) / PS), [5]);
  const bo = machine.createMapping(4);
  const dev = mm.mmap(bo, { pages: 4 });
  c0.write8(mm, dev.start, 1);
  clearRefsSoftDirty(mm);
  assert.notEqual(mm.readPte(dev.start / PS) & PTE_WRITE, 0, 'a TTM-style PFN map is not write-protected: soft-dirty cannot track BOs');
  const plain = new Machine();
  assert.throws(() => clearRefsSoftDirty(plain.createMm()), InvalidArgumentError);
});

test('planted mergeDropsSoftDirty: a page unmapped and mapped again merges into a reset VMA and reads clean, its write forgotten', () => {
  for (const planted of [false, true]) {
    const machine = new Machine({ cpus: 1, softDirty: true, mergeDropsSoftDirty: planted });
    const file = machine.createMapping(2, { kind: 'shmem', ops: shmemFileOps() });
    const mm = machine.createMm();
    const vma = mm.mmap(file, { pages: 2 });
    clearRefsSoftDirty(mm);
    machine.cpus[0]!.write8(mm, vma.start + PS, 1);
    mm.munmap(vma.start + PS, PS); // the PTE and its soft-dirty bit go
    mm.mmap(file, { pages: 1, pgoff: 1, address: vma.start + PS });
    assert.equal(mm.vmas.length, 1, 'merged back into one VMA');
    const dirty = [...readPagemap(mm, vma.start, 2)].map((e) => (e & PM_SOFT_DIRTY ? 1 : 0));
    assert.deepEqual(dirty, planted ? [0, 0] : [1, 1], planted ? 'the write is lost' : 'the whole merged VMA reads dirty');
  }
});
