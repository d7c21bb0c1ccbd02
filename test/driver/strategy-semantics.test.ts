import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BUILTIN_STRATEGIES, PTE_UFFD_WP, PTE_WRITE, VM_UFFD_WP, userfaultfdOf, zapBoPages,
} from '../../src/index.js';
import { PS, strategySpace } from './strategy-fixtures.js';

const softDirty = BUILTIN_STRATEGIES['soft-dirty'];
const uffdWp = BUILTIN_STRATEGIES['uffd-wp'];

/** A BO of `pages` pages mapped in two processes, each written through its own mapping. */
function twoProcesses(strategy: typeof softDirty, pages = 8) {
  const s = strategySpace(strategy);
  const b = s.bo(pages);
  const a = s.machine.createMm();
  const c = s.machine.createMm();
  const va = b.map(a);
  const vc = b.map(c);
  const write = (mm: typeof a, vma: typeof va, page: number) => s.cpu.write8(mm, vma.start + page * PS + 5, page + 1);
  return { ...s, ...b, a, c, va, vc, write };
}

for (const strategy of [softDirty, uffdWp]) {
  test(`${strategy.name}: needs shmem BOs${strategy.machine?.softDirty ? ' and a soft-dirty machine' : ''}`, () => {
    assert.equal(strategy.backing, 'shmem');
  });

  test(`${strategy.name}: a write in either process is found once, and a quiet scan finds nothing`, () => {
    const { a, c, va, vc, write, harvest } = twoProcesses(strategy);
    harvest(); // a new mapping may read dirty as a whole (soft-dirty's VM_SOFTDIRTY): settle first
    write(a, va, 2);
    write(c, vc, 5);
    assert.deepEqual(harvest(), [2, 5]);
    assert.deepEqual(harvest(), []);
    write(c, vc, 2);
    assert.deepEqual(harvest(), [2], 'written again after the scan: found again');
  });

  test(`${strategy.name}: munmap keeps what the unmapped PTEs knew`, () => {
    const { a, va, write, harvest } = twoProcesses(strategy);
    harvest();
    write(a, va, 3);
    a.munmap(va.start, va.end - va.start);
    assert.deepEqual(harvest(), [3]);
  });

  test(`${strategy.name}: a device-write zap keeps what the zapped PTEs knew, and adds nothing`, () => {
    const { a, va, write, harvest, bo, t } = twoProcesses(strategy);
    harvest();
    write(a, va, 4);
    t.beforeUnmap(4, 6); // the driver's order: the tracker first, then the zap
    zapBoPages(bo, 4, 6);
    assert.deepEqual(harvest(), [4]);
    assert.deepEqual(harvest(), [], 'the zapped, clean page 5 is not reported');
  });

  test(`${strategy.name}: peekDirty shows what the next scan will find and changes nothing`, () => {
    const { a, va, write, harvest, peek } = twoProcesses(strategy);
    harvest();
    write(a, va, 6);
    assert.deepEqual(peek(), [6]);
    assert.deepEqual(peek(), [6]);
    assert.deepEqual(harvest(), [6]);
    assert.deepEqual(peek(), []);
  });
}

test('soft-dirty: clear_refs is per process — scanning one BO keeps the bits of another BO in the same process', () => {
  const s = strategySpace(softDirty);
  const x = s.bo(4);
  const y = s.bo(4);
  const mm = s.machine.createMm();
  const vx = x.map(mm);
  const vy = y.map(mm);
  x.harvest();
  y.harvest();
  s.cpu.write8(mm, vy.start + 1 * PS, 1);
  s.cpu.write8(mm, vx.start + 2 * PS, 1);
  assert.deepEqual(x.harvest(), [2]); // clear_refs of mm cleared y's bit too
  assert.deepEqual(y.harvest(), [1], 'y\'s page was read before the clear');
});

test('soft-dirty: a new mapping reads dirty as a whole until the next clear (VM_SOFTDIRTY: false positives, never losses)', () => {
  const s = strategySpace(softDirty);
  const b = s.bo(4);
  const mm = s.machine.createMm();
  b.map(mm);
  assert.deepEqual(b.harvest(), [0, 1, 2, 3]);
  assert.deepEqual(b.harvest(), []);
  const other = s.machine.createMm();
  b.map(other);
  assert.deepEqual(b.harvest(), [0, 1, 2, 3], 'the second process\'s new VMA');
});

test('soft-dirty: after clear_refs the PTEs are read-only; the first write faults and sets the bit', () => {
  const { a, va, write, harvest } = twoProcesses(softDirty);
  write(a, va, 1);
  harvest();
  const pte = () => a.readPte(va.start / PS + 1);
  assert.equal(pte() & PTE_WRITE, 0);
  const faults = s0(a);
  write(a, va, 1);
  assert.ok(pte() & PTE_WRITE);
  assert.equal(s0(a) - faults, 1);
  function s0(mm: typeof a): number {
    return mm.machine.cpus.reduce((n, c) => n + c.counters.faults.wp, 0);
  }
});

test('uffd-wp: each process mapping the BO gets its own async userfaultfd and registered, protected VMAs', () => {
  const { a, c, va, vc } = twoProcesses(uffdWp);
  for (const [mm, vma] of [[a, va], [c, vc]] as const) {
    const uffd = userfaultfdOf(mm);
    assert.ok(uffd !== null && uffd.async, `mm${mm.id} has an async userfaultfd`);
    assert.ok(mm.findVma(vma.start)!.flags & VM_UFFD_WP);
  }
});

test('uffd-wp: the first write to a protected page resolves in the kernel (async) and the scan protects it again', () => {
  const { a, va, write, harvest } = twoProcesses(uffdWp);
  write(a, va, 1);
  const vpn = va.start / PS + 1;
  assert.equal(a.readPte(vpn) & PTE_UFFD_WP, 0, 'the write cleared the uffd-wp bit');
  assert.deepEqual(harvest(), [1]);
  assert.ok(a.readPte(vpn) & PTE_UFFD_WP, 'protected again by the scan');
  assert.equal(a.readPte(vpn) & PTE_WRITE, 0);
});

test('uffd-wp: a mapping made behind the driver\'s back is registered at the next scan and over-reported once', () => {
  const s = strategySpace(uffdWp);
  const b = s.bo(4);
  const mm = s.machine.createMm();
  const vma = mm.mmap(s.space.mapping, { pgoff: b.bo.offset, pages: 4 }); // not through map(): the tracker is not told
  s.cpu.write8(mm, vma.start + 2 * PS, 1);
  assert.deepEqual(b.harvest(), [0, 1, 2, 3], 'unregistered until now: every page may have been written');
  assert.ok(mm.findVma(vma.start)!.flags & VM_UFFD_WP);
  assert.deepEqual(b.harvest(), []);
  s.cpu.write8(mm, vma.start + 3 * PS, 1);
  assert.deepEqual(b.harvest(), [3]);
});

test('full: every scan declares the whole BO dirty; vmwgfx strategies pin their method', () => {
  const full = strategySpace(BUILTIN_STRATEGIES.full).bo(5);
  assert.deepEqual(full.harvest(), [0, 1, 2, 3, 4]);
  assert.deepEqual(full.harvest(), [0, 1, 2, 3, 4]);
  const pt = strategySpace(BUILTIN_STRATEGIES.pagetable).bo(1024);
  assert.equal(pt.t.method, 'pagetable', 'pagetable even for a large BO');
  const mk = strategySpace(BUILTIN_STRATEGIES.mkwrite).bo(4);
  assert.equal(mk.t.method, 'mkwrite', 'mkwrite even for a small BO');
  assert.equal(mk.t.mapWritable(0), false);
  for (let i = 0; i < 5; i++) pt.harvest();
  assert.equal(pt.t.switches, 0, 'quiet scans never switch a pinned method');
  const ad = strategySpace(BUILTIN_STRATEGIES.adaptive).bo(8);
  for (let i = 0; i < 3; i++) ad.harvest();
  assert.equal(ad.t.method, 'mkwrite', 'adaptive: three quiet scans switch PAGETABLE to MKWRITE');
});
