import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  Bitmap, BusError, InvalidArgumentError, Machine, PTE_WRITE, VM_FAULT_OK, VM_FAULT_SIGBUS, cleanRecordSharedMappingRange, faultAround,
} from '../../src/index.js';
import { propertySeed, pteAt } from './fixtures.js';

const PS = 4096;

test('i_mmap answers which VMAs map a pgoff range exactly as a full scan would', (t) => {
  const seed = propertySeed(31);
  t.diagnostic(`fast-check seed ${seed}`);
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(40), fc.integer({ min: 1, max: 20 }), fc.boolean()), { minLength: 1, maxLength: 12 }),
      fc.nat(63),
      fc.integer({ min: 1, max: 64 }),
      (specs, first, nr) => {
        const machine = new Machine();
        const bo = machine.createMapping(64);
        const mms = [machine.createMm(), machine.createMm()];
        const vmas = specs.map(([pgoff, pages, which]) => mms[which ? 1 : 0]!.mmap(bo, { pgoff, pages: Math.min(pages, 64 - pgoff) }));
        // Unmap a page from the middle of some VMAs to exercise splits.
        for (const v of vmas.filter((_, i) => i % 3 === 0)) if (v.pages > 2) v.mm.munmap(v.start + PS, PS);
        const expected = bo.allVmas().filter((v) => v.pgoff < first + nr && v.pgoffEnd > first).map((v) => v.id).sort();
        assert.deepEqual(bo.vmasIntersecting(first, nr).map((v) => v.id).sort(), expected);
        const order = bo.allVmas().map((v) => [v.pgoff, v.id]);
        assert.deepEqual(order, [...order].sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!), 'walk order: by pgoff, then creation');
      },
    ),
    { seed, numRuns: 100 },
  );
});

test('munmap in the middle splits the VMA, zaps and flushes only that part', () => {
  const machine = new Machine();
  const bo = machine.createMapping(8);
  const mm = machine.createMm();
  const vma = mm.mmap(bo, { pages: 8 });
  const cpu = machine.cpus[0]!;
  for (let p = 0; p < 8; p++) cpu.write8(mm, vma.start + p * PS, p + 1);
  mm.munmap(vma.start + 3 * PS, 2 * PS);
  assert.deepEqual(mm.vmas.map((v) => [(v.start - vma.start) / PS, v.pages, v.pgoff]), [[0, 3, 0], [5, 3, 5]]);
  assert.equal(cpu.tlb.peek(mm.id, vma.start / PS + 3), null);
  assert.equal(cpu.read8(mm, vma.start + 5 * PS), 6, 'the tail still maps pgoff 5');
  assert.throws(() => cpu.read8(mm, vma.start + 3 * PS), /no mapping/);
  assert.equal(bo.vmasIntersecting(3, 2).length, 0);
  // The zapped pages' dirty bits are gone with the PTEs (the driver harvests before unmapping).
  const bitmap = new Bitmap(8);
  cleanRecordSharedMappingRange(bo, 0, 8, 0, bitmap, { start: 0, end: 0 });
  assert.deepEqual(bitmap.toArray(), [0, 1, 2, 5, 6, 7]);
});

test('mprotect read-only write-protects PTEs and TLBs; back to rw the next write goes through pfn_mkwrite', () => {
  const machine = new Machine();
  const mkwrites: number[] = [];
  const bo = machine.createMapping(4, {
    ops: { fault: (vmf) => faultAround(vmf, 4, true), pfnMkwrite: (vmf) => (mkwrites.push(vmf.pgoff), VM_FAULT_OK) },
  });
  const mm = machine.createMm();
  const vma = mm.mmap(bo, { pages: 4 });
  const cpu = machine.cpus[0]!;
  cpu.write8(mm, vma.start + PS, 1);
  mm.mprotect(vma.start, 2 * PS, 'r');
  assert.equal(mm.vmas.length, 2);
  assert.equal(pteAt(vma, 1) & PTE_WRITE, 0);
  assert.equal(cpu.tlb.peek(mm.id, vma.start / PS + 1), null);
  assert.throws(() => cpu.write8(mm, vma.start + PS, 2), /not permitted/);
  mm.mprotect(vma.start, 2 * PS, 'rw');
  cpu.write8(mm, vma.start + PS, 2);
  assert.deepEqual(mkwrites, [1]);
  assert.ok(pteAt(vma, 1) & PTE_WRITE);
});

test('a vm_ops mprotect hook can refuse, and mprotect of a hole is rejected, both without change', () => {
  const machine = new Machine();
  const bo = machine.createMapping(4, { ops: { fault: () => 0, mprotect: (_v, _s, _e, f) => (f & 2 ? 'private mappings may not become writable' : null) } });
  const mm = machine.createMm();
  const vma = mm.mmap(bo, { pages: 4, prot: 'r', shared: false });
  assert.throws(() => mm.mprotect(vma.start, PS, 'rw'), InvalidArgumentError);
  assert.equal(mm.vmas.length, 1);
  assert.throws(() => mm.mprotect(vma.start, 8 * PS, 'r'), /not fully mapped/);
});

test('private mappings copy on write: the shared page keeps its data, the writer gets its own page', () => {
  const machine = new Machine();
  const bo = machine.createMapping(2);
  const a = machine.createMm();
  const b = machine.createMm();
  const shared = a.mmap(bo, { pages: 2 });
  const priv = b.mmap(bo, { pages: 2, shared: false });
  const [c0, c1] = machine.cpus as [typeof machine.cpus[0], typeof machine.cpus[0]];
  c0.write8(a, shared.start, 5);
  assert.equal(c1.read8(b, priv.start), 5);
  c1.write8(b, priv.start, 9);
  assert.equal(c1.counters.faults.cow, 1);
  assert.equal(c0.read8(a, shared.start), 5);
  assert.equal(c1.read8(b, priv.start), 9);
  const used = machine.phys.framesInUse;
  b.munmap(priv.start, 2 * PS);
  assert.equal(machine.phys.framesInUse, used - 1, 'the anonymous copy is freed with its PTE');
});

test('a fault handler that refuses gives SIGBUS as a typed error', () => {
  const machine = new Machine();
  const bo = machine.createMapping(2, { ops: { fault: () => VM_FAULT_SIGBUS } });
  const mm = machine.createMm();
  const vma = mm.mmap(bo, { pages: 2 });
  const err = (() => { try { machine.cpus[1]!.read8(mm, vma.start + 5); } catch (e) { return e; } })();
  assert.ok(err instanceof BusError);
  assert.equal(err.code, 'SIGBUS');
  assert.equal(err.cpu, 1);
  assert.equal(err.address, vma.start + 5);
});
