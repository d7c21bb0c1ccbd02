import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AccessBlockedError, InvalidArgumentError, KernelError, Machine, PAGE_IS_PRESENT, PAGE_IS_SWAPPED, PAGE_IS_WPALLOWED,
  PAGE_IS_WRITTEN, PM_SCAN_CHECK_WPASYNC, PM_SCAN_WP_MATCHING, PTE_PRESENT, PTE_UFFD_MARKER, PTE_UFFD_WP, PTE_WRITE,
  type MachineOptions, SimWpMemory, type TraceEvent, Userfaultfd, VM_UFFD_WP, madviseDontneed, pagemapScan, punchHole, shmemFileOps,
} from '../../src/index.js';

const PS = 4096;
const W = PAGE_IS_WRITTEN;

/** One process with a shmem file of `pages` mapped at a 2 MiB aligned address, and a userfaultfd. */
function setup(pages: number, features?: number, options: MachineOptions = {}) {
  const machine = new Machine({ cpus: 2, ...options });
  const file = machine.createMapping(pages, { kind: 'shmem', ops: shmemFileOps(), populate: false });
  const mm = machine.createMm();
  const vma = mm.mmap(file, { pages, address: 512 * PS });
  const uffd = new Userfaultfd(mm, features);
  const [c0, c1] = machine.cpus as [typeof machine.cpus[0], typeof machine.cpus[0]];
  const pte = (p: number) => mm.readPte(vma.start / PS + p);
  // vma shrinks when register/unregister split it; the region does not.
  const end = vma.start + pages * PS;
  const written = (flags = 0) => pagemapScan(mm, { start: vma.start, end, flags, vecLen: 1000, categoryMask: W, returnMask: W })
    .regions.map((r) => [(r.start - vma.start) / PS, (r.end - vma.start) / PS]);
  return { machine, file, mm, vma, uffd, c0, c1, pte, written, end };
}

test('async uffd-wp: scan-and-protect reports exactly the pages written since, as merged regions', () => {
  const { vma, mm, uffd, c0, written } = setup(64);
  uffd.register(vma.start, 64 * PS);
  // Unpopulated pages of a registered VMA read as written until protected once.
  assert.deepEqual(written(PM_SCAN_WP_MATCHING), [[0, 64]]);
  assert.deepEqual(written(), []);
  c0.write8(mm, vma.start + 3 * PS, 1);
  c0.write(mm, vma.start + 10 * PS + 4000, new Uint8Array(200)); // crosses into page 11
  c0.write8(mm, vma.start + 12 * PS, 1);
  assert.deepEqual(written(PM_SCAN_WP_MATCHING), [[3, 4], [10, 13]]);
  assert.deepEqual(written(), [], 'the scan protected what it reported');
  c0.write8(mm, vma.start + 7 * PS, 1);
  assert.deepEqual(written(), [[7, 8]]);
});

test('a protected page is read-only with the uffd-wp bit; the first write faults and the kernel clears the bit', () => {
  const { vma, mm, uffd, c0, c1, pte, written } = setup(8);
  uffd.register(vma.start, 8 * PS);
  c1.write8(mm, vma.start, 1); // c1 caches a writable, dirty entry
  written(PM_SCAN_WP_MATCHING);
  assert.equal(pte(0) & (PTE_WRITE | PTE_UFFD_WP), PTE_UFFD_WP);
  assert.equal(c1.tlb.peek(mm.id, vma.start / PS), null, 'the scan flushed the stale writable entry');
  assert.equal(pte(1), PTE_UFFD_MARKER, 'an unpopulated page gets a marker');
  const faults = c0.counters.faults.wp;
  c0.write8(mm, vma.start, 2);
  assert.equal(c0.counters.faults.wp, faults + 1);
  assert.equal(pte(0) & (PTE_WRITE | PTE_UFFD_WP), PTE_WRITE);
  c0.write8(mm, vma.start + PS, 2); // through the marker: fault in, then resolve
  assert.equal(pte(1) & (PTE_PRESENT | PTE_WRITE | PTE_UFFD_WP), PTE_PRESENT | PTE_WRITE);
  assert.deepEqual(written(), [[0, 2]]);
});

test('a read through a marker maps the page still protected', () => {
  const { vma, mm, uffd, c0, pte, written } = setup(4);
  uffd.register(vma.start, 4 * PS);
  written(PM_SCAN_WP_MATCHING);
  assert.equal(c0.read8(mm, vma.start + 2 * PS), 0);
  assert.equal(pte(2) & (PTE_PRESENT | PTE_WRITE | PTE_UFFD_WP), PTE_PRESENT | PTE_UFFD_WP);
  assert.deepEqual(written(), []);
});

test('sync mode: the write blocks, the handler is told, un-protecting wakes it', async () => {
  const { vma, mm, uffd, c0, pte } = setup(4, 0);
  uffd.register(vma.start, 4 * PS);
  c0.write8(mm, vma.start, 1);
  uffd.writeProtect(vma.start, 4 * PS, true);
  assert.throws(() => c0.write8(mm, vma.start, 2), (e: unknown) => e instanceof AccessBlockedError && e.reason === 'userfault');
  assert.deepEqual(uffd.read().map((m) => m.address), [vma.start]);
  assert.equal(c0.read8(mm, vma.start), 1, 'the store did not land');
  const done = c0.writeAsync(mm, vma.start, new Uint8Array([3]));
  uffd.writeProtect(vma.start, PS, false);
  await done;
  assert.equal(c0.read8(mm, vma.start), 3);
  assert.equal(pte(0) & PTE_UFFD_WP, 0);
  // A handler that resolves at once: the access does not block.
  uffd.onMessage = (m) => uffd.writeProtect(m.address, PS, false);
  c0.write8(mm, vma.start + PS, 4);
  assert.equal(c0.read8(mm, vma.start + PS), 4);
});

test('register/unregister split VMAs and accept holes; UFFDIO_WRITEPROTECT stops at the first unregistered VMA', () => {
  const { vma, mm, uffd, c0, pte } = setup(64);
  mm.munmap(vma.start + 20 * PS, 10 * PS);
  uffd.register(vma.start, 64 * PS);
  assert.ok(mm.vmas.every((v) => v.flags & VM_UFFD_WP));
  uffd.unregister(vma.start + 35 * PS, 29 * PS);
  assert.deepEqual(mm.vmas.map((v) => [(v.start - vma.start) / PS, (v.end - vma.start) / PS, !!(v.flags & VM_UFFD_WP)]), [[0, 20, true], [30, 35, true], [35, 64, false]]);
  c0.write8(mm, vma.start + 40 * PS, 1);
  assert.throws(() => uffd.writeProtect(vma.start, 50 * PS, true), (e: unknown) => e instanceof KernelError && e.code === 'ENOENT');
  assert.equal(pte(32), PTE_UFFD_MARKER, 'VMAs before the unregistered one were protected');
  assert.equal(pte(40) & PTE_UFFD_WP, 0);
  assert.throws(() => uffd.register(vma.start + 22 * PS, 4 * PS), InvalidArgumentError, 'a range with no VMA at all');
  assert.throws(() => uffd.writeProtect(vma.start + 22 * PS, 4 * PS, true), (e: unknown) => e instanceof KernelError && e.code === 'ENOENT');
  assert.throws(() => uffd.register(vma.start + 1, PS), InvalidArgumentError);
  // Unregistering clears the protection.
  uffd.unregister(vma.start, 35 * PS);
  assert.equal(pte(32), 0);
});

test('MADV_DONTNEED and hole punch keep markers for protected pages and drop written ones', () => {
  const { vma, mm, file, uffd, c0, pte, written } = setup(16);
  uffd.register(vma.start, 16 * PS);
  for (let p = 0; p < 16; p++) c0.write8(mm, vma.start + p * PS, p + 1);
  written(PM_SCAN_WP_MATCHING);
  c0.write8(mm, vma.start + 5 * PS, 9);
  c0.write8(mm, vma.start + 9 * PS, 9);
  madviseDontneed(mm, vma.start + 4 * PS, 2 * PS);
  punchHole(file, 8, 2);
  assert.equal(pte(4), PTE_UFFD_MARKER);
  assert.equal(pte(5), 0, 'a written page becomes an empty slot (written)');
  assert.equal(pte(8), PTE_UFFD_MARKER);
  assert.deepEqual(written(), [[5, 6], [9, 10]]);
  assert.equal(c0.read8(mm, vma.start + 5 * PS), 9, 'MADV_DONTNEED on shmem keeps the data');
  assert.equal(c0.read8(mm, vma.start + 8 * PS), 0, 'a punched page reads back zero');
});

test('PAGEMAP_SCAN: categories, inversion, any-of, return mask, max_pages and walk_end', () => {
  const { vma, mm, uffd, c0, written, end } = setup(32);
  uffd.register(vma.start, 32 * PS);
  written(PM_SCAN_WP_MATCHING);
  for (const p of [2, 3, 4, 10]) c0.write8(mm, vma.start + p * PS, 1);
  c0.read8(mm, vma.start + 20 * PS);
  const scan = (a: Partial<Parameters<typeof pagemapScan>[1]>) => {
    const r = pagemapScan(mm, { start: vma.start, end, vecLen: 100, ...a });
    return { regions: r.regions.map((g) => [(g.start - vma.start) / PS, (g.end - vma.start) / PS, g.categories]), walkEnd: (r.walkEnd - vma.start) / PS };
  };
  assert.deepEqual(scan({ categoryMask: PAGE_IS_PRESENT, returnMask: PAGE_IS_PRESENT | W }).regions, [[2, 5, PAGE_IS_PRESENT | W], [10, 11, PAGE_IS_PRESENT | W], [20, 21, PAGE_IS_PRESENT]]);
  assert.deepEqual(scan({ categoryMask: PAGE_IS_SWAPPED, returnMask: 0 }).regions, [[0, 2, 0], [5, 10, 0], [11, 20, 0], [21, 32, 0]], 'markers read as swapped');
  assert.deepEqual(scan({ categoryInverted: W, categoryMask: W | PAGE_IS_PRESENT, returnMask: W }).regions, [[20, 21, 0]], 'present and not written');
  assert.deepEqual(scan({ categoryAnyofMask: W | PAGE_IS_PRESENT, returnMask: PAGE_IS_WPALLOWED }).regions, [[2, 5, 1], [10, 11, 1], [20, 21, 1]]);
  assert.deepEqual(scan({ categoryMask: W, returnMask: W, maxPages: 2 }), { regions: [[2, 4, W]], walkEnd: 4 });
  assert.deepEqual(scan({ categoryMask: W, returnMask: W, vecLen: 1 }), { regions: [[2, 5, W]], walkEnd: 10 });
  assert.throws(() => scan({ flags: 4 }), InvalidArgumentError);
  assert.throws(() => scan({ categoryMask: 1 << 9 }), InvalidArgumentError);
  // An unregistered VMA: CHECK_WPASYNC refuses it, WP_MATCHING skips it.
  uffd.unregister(vma.start + 16 * PS, 16 * PS);
  assert.throws(() => scan({ flags: PM_SCAN_CHECK_WPASYNC, categoryMask: W, returnMask: W }), (e: unknown) => e instanceof KernelError && e.code === 'EPERM');
  assert.deepEqual(scan({ flags: PM_SCAN_WP_MATCHING, categoryMask: W, returnMask: W }).regions, [[2, 5, W], [10, 11, W]]);
  assert.deepEqual(scan({ categoryMask: W, returnMask: W }).regions, [[16, 32, W]], 'unprotected pages of the unregistered VMA read as written');
});

test('PAGEMAP_SCAN: walk_end keeps an early stop when a later pass of the same call finishes', () => {
  const m = new SimWpMemory({ pages: 1200 });
  m.register(0, 1200);
  m.scan({ start: 0, end: 1200, flags: PM_SCAN_WP_MATCHING, vecLen: 0 });
  for (let p = 0; p < 1100; p += 2) m.write(p * PS, new Uint8Array([1]));
  // 550 regions in a 600-region vector: the 512-region bounce buffer fills at page 1024.
  const r = m.scan({ start: 0, end: 1100, vecLen: 600, categoryMask: W, returnMask: W });
  assert.equal(r.regions.length, 550);
  assert.equal(r.walkEnd, 1024);
});

test('scan-and-protect brackets its changes with mmu notifiers and flushes per page table', () => {
  const { machine, vma, mm, uffd, c0, c1, written } = setup(1024);
  uffd.register(vma.start, 1024 * PS);
  written(PM_SCAN_WP_MATCHING);
  c0.write8(mm, vma.start + 5 * PS, 1);
  c1.write8(mm, vma.start + 600 * PS, 1);
  const events: string[] = [];
  mm.subscribe({ invalidateRangeStart: (r) => events.push(`start ${r.event}`), invalidateRangeEnd: () => events.push('end') });
  const flushes: TraceEvent[] = [];
  machine.trace = (e) => void (e.type === 'tlb-flush' && flushes.push(e));
  assert.deepEqual(written(PM_SCAN_WP_MATCHING), [[5, 6], [600, 601]]);
  assert.deepEqual(events, ['start protection-vma', 'end']);
  assert.equal(flushes.length, 2, 'one flush per table that changed');
  assert.equal(c0.tlb.peek(mm.id, vma.start / PS + 5), null);
});

test('planted scanProtectsUnregistered: WP_MATCHING protects an unregistered VMA, and a write there leaves a writable PTE with the uffd-wp bit', () => {
  for (const planted of [false, true]) {
    const { mm, vma, uffd, c0, pte, end } = setup(2, undefined, { scanProtectsUnregistered: planted });
    uffd.register(vma.start, PS);
    c0.write8(mm, vma.start + PS, 1);
    const r = pagemapScan(mm, { start: vma.start, end, flags: PM_SCAN_WP_MATCHING, vecLen: 4, categoryMask: W, returnMask: W });
    assert.deepEqual(r.regions.map((g) => [(g.start - vma.start) / PS, (g.end - vma.start) / PS]), [[0, planted ? 2 : 1]]);
    c0.write8(mm, vma.start + PS, 2);
    assert.equal((pte(1) & PTE_UFFD_WP) !== 0 && (pte(1) & PTE_WRITE) !== 0, planted, 'the state the kernel WARNs about');
  }
});

test('planted scanWithoutTlbFlush: a stale writable TLB entry survives the scan, and a write through it stays unreported', () => {
  for (const planted of [false, true]) {
    const { mm, vma, uffd, c1, written } = setup(1, undefined, { scanWithoutTlbFlush: planted });
    uffd.register(vma.start, PS);
    c1.write8(mm, vma.start, 1);
    assert.deepEqual(written(PM_SCAN_WP_MATCHING), [[0, 1]]);
    c1.write8(mm, vma.start, 2);
    assert.deepEqual(written(PM_SCAN_WP_MATCHING), planted ? [] : [[0, 1]]);
  }
});
