import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoDirtyTracker, PTE_DIRTY, PTE_WRITE } from '../../src/index.js';
import { offlineSpace, PS } from './fixtures.js';

function tracked(pages: number) {
  const { machine, space, config, mm } = offlineSpace();
  const bo = space.create(pages * PS);
  const vma = mm.mmap(space.mapping, { pgoff: bo.offset, pages });
  const tracker = BoDirtyTracker.add(bo, config);
  const cpu = machine.cpus[0]!;
  const write = (page: number) => cpu.write8(mm, vma.start + page * PS, 1);
  const pte = (page: number) => mm.readPte(vma.start / PS + page);
  return { machine, space, bo, vma, tracker, cpu, write, pte, mm };
}

test('the initial method follows BO size: < 512 pages PAGETABLE, >= 512 MKWRITE (§3.3)', () => {
  assert.equal(tracked(511).tracker.method, 'pagetable');
  assert.equal(tracked(512).tracker.method, 'mkwrite');
});

test('MKWRITE: PTEs are installed read-only and mkwrite sets the bit before the PTE becomes writable', () => {
  const { tracker, write, pte, bo } = tracked(512);
  write(7);
  assert.deepEqual(tracker.bitmap.toArray(), [7]);
  assert.deepEqual([tracker.start, tracker.end], [7, 8]);
  assert.ok(pte(7) & PTE_WRITE && pte(7) & PTE_DIRTY);
  assert.equal(pte(8) & PTE_WRITE, 0, 'prefaulted neighbours are read-only');
  void bo;
});

test('method switching follows the §3.5 worked example scan by scan (1024 pages, 200 pages per submission)', () => {
  const { tracker, write, bo } = tracked(1024);
  const res = { transfer: () => tracker.transferToResource(whole) };
  const whole = { pageSpan: (): [number, number] => [0, bo.pages], dirtyRangeAdd: () => {} } as unknown as Parameters<typeof tracker.transferToResource>[0];
  const submit = (pages: number[]) => {
    for (const p of pages) write(p);
    const r = tracker.scan();
    res.transfer();
    return [r.method, r.found, r.changeCount, r.switchedTo];
  };
  const burst = (k: number) => Array.from({ length: 200 }, (_, i) => (i * 5 + k) % 1024);
  assert.deepEqual(submit(burst(0)), ['mkwrite', 200, 1, null]); // 100*200/1024 = 19 > 10
  assert.deepEqual(submit(burst(1)), ['mkwrite', 200, 2, null]);
  assert.deepEqual(submit(burst(2)), ['mkwrite', 200, 0, 'pagetable']);
  assert.equal(tracker.method, 'pagetable');
  assert.deepEqual(submit([]), ['pagetable', 0, 1, null]);
  assert.deepEqual(submit([]), ['pagetable', 0, 2, null]);
  assert.deepEqual(submit([]), ['pagetable', 0, 0, 'mkwrite']);
  assert.equal(tracker.switches, 2);
});

test('an MKWRITE scan with nothing recorded neither counts nor resets the vote (§3.5, §7.7)', () => {
  const { tracker, write, bo } = tracked(1024);
  const whole = { pageSpan: (): [number, number] => [0, bo.pages], dirtyRangeAdd: () => {} } as unknown as Parameters<typeof tracker.transferToResource>[0];
  for (let p = 0; p < 113; p++) write(p); // ceil(11 * 1024 / 100) = 113: the smallest count that votes
  assert.equal(tracker.scan().changeCount, 1);
  tracker.transferToResource(whole);
  assert.deepEqual(tracker.scan(), { method: 'mkwrite', found: 0, switchedTo: null, changeCount: 1 });
  for (let p = 0; p < 112; p++) write(p);
  assert.equal(tracker.scan().changeCount, 0, '112 pages is 10 %: resets');
});

test('PAGETABLE harvests before unmap: dirty bits survive zapping the PTEs (§3.6)', () => {
  const { tracker, write, pte, mm, vma } = tracked(8);
  write(2);
  write(5);
  tracker.unmap(0, 4);
  assert.deepEqual(tracker.bitmap.toArray(), [2]);
  assert.equal(pte(2), 0, 'zapped');
  assert.ok(pte(5) & PTE_DIRTY, 'outside the range: untouched');
  assert.equal(mm.machine.cpus[0]!.read8(mm, vma.start + 2 * PS), 1, 'the data is still there after the refault');
});

test('transfer to one resource never takes another resource\'s bits (the max-for-min bug §6.C1)', () => {
  const { tracker, write, bo } = tracked(8);
  const got: Record<string, Array<[number, number]>> = { a: [], b: [] };
  const res = (name: 'a' | 'b', from: number, to: number) =>
    ({ pageSpan: (): [number, number] => [from, to], dirtyRangeAdd: (s: number, e: number) => got[name]!.push([s / PS, e / PS]) }) as unknown as Parameters<typeof tracker.transferToResource>[0];
  write(1);
  write(6);
  tracker.scan();
  assert.equal(tracker.transferToResource(res('a', 0, 4)), 1);
  assert.deepEqual(got.a, [[1, 2]]);
  assert.deepEqual(tracker.bitmap.toArray(), [6], 'the second resource\'s page is still recorded');
  assert.deepEqual([tracker.start, tracker.end], [4, 7]);
  assert.equal(tracker.transferToResource(res('b', 4, 8)), 1);
  assert.deepEqual(got.b, [[6, 7]]);
  assert.ok(tracker.empty);
  // The other order: the second resource first must not take the first one's bits either.
  write(1);
  write(6);
  tracker.scan();
  got.a = [];
  got.b = [];
  assert.equal(tracker.transferToResource(res('b', 4, 8)), 1);
  assert.deepEqual(got.b, [[6, 7]]);
  assert.deepEqual(tracker.bitmap.toArray(), [1]);
  assert.equal(tracker.transferToResource(res('a', 0, 4)), 1);
  assert.deepEqual(got.a, [[1, 2]]);
  void bo;
});

test('the tracker goes away exactly when the last reference is dropped (§6.C6)', () => {
  const { bo, tracker } = tracked(4);
  assert.equal(BoDirtyTracker.add(bo), tracker);
  tracker.release();
  assert.equal(bo.tracker, tracker);
  tracker.release();
  assert.equal(bo.tracker, null);
});

test('a tracker added to a large BO that is already mapped and written starts in MKWRITE with those pages recorded', () => {
  const { machine, space, config, mm } = offlineSpace();
  const bo = space.create(512 * PS);
  const vma = mm.mmap(space.mapping, { pgoff: bo.offset, pages: 512 });
  const cpu = machine.cpus[0]!;
  cpu.write8(mm, vma.start + 3 * PS, 1);
  cpu.write8(mm, vma.start + 9 * PS, 1);
  const tracker = BoDirtyTracker.add(bo, config);
  assert.equal(tracker.method, 'mkwrite');
  assert.deepEqual(tracker.bitmap.toArray(), [3, 9], 'pages dirtied before the write-protect are picked up');
  assert.equal(mm.readPte(vma.start / PS + 3) & PTE_WRITE, 0, 'and write-protected');
});

test('MKWRITE → PAGETABLE keeps exactly the contiguous over-approximation [start, end) as the record', () => {
  const { machine, space, config, mm } = offlineSpace({}, { mkwriteThresholdPages: 1, changeTriggers: 0 });
  const bo = space.create(16 * PS);
  const vma = mm.mmap(space.mapping, { pgoff: bo.offset, pages: 16 });
  const tracker = BoDirtyTracker.add(bo, config);
  for (const p of [2, 5, 6]) machine.cpus[0]!.write8(mm, vma.start + p * PS, 1);
  const r = tracker.scan();
  assert.equal(r.switchedTo, 'pagetable');
  assert.deepEqual(tracker.bitmap.toArray(), [2, 3, 4, 5, 6]);
  assert.deepEqual([tracker.start, tracker.end], [2, 7]);
});

test('markDirty widens bits and bounds; clearResource clears only the resource\'s pages and shrinks the bounds', () => {
  const { tracker } = tracked(16);
  tracker.markDirty(4, 4);
  assert.ok(tracker.empty, 'an empty range marks nothing');
  tracker.markDirty(2, 5);
  tracker.markDirty(9, 12);
  assert.deepEqual(tracker.bitmap.toArray(), [2, 3, 4, 9, 10, 11]);
  assert.deepEqual([tracker.start, tracker.end], [2, 12]);
  const res = (from: number, to: number) => ({ pageSpan: (): [number, number] => [from, to] }) as unknown as Parameters<typeof tracker.clearResource>[0];
  tracker.clearResource(res(12, 16));
  assert.deepEqual(tracker.bitmap.toArray(), [2, 3, 4, 9, 10, 11], 'a resource past the bounds clears nothing');
  tracker.clearResource(res(0, 4));
  assert.deepEqual(tracker.bitmap.toArray(), [4, 9, 10, 11]);
  assert.deepEqual([tracker.start, tracker.end], [4, 12], 'the start moves past the cleared resource');
  tracker.clearResource(res(8, 16));
  assert.deepEqual(tracker.bitmap.toArray(), [4]);
  assert.deepEqual([tracker.start, tracker.end], [4, 8], 'the end moves down to the cleared resource\'s start');
});

test('unmapping a sub-range zaps only those pages: the D bits of the others survive for the next scan', () => {
  const { tracker, write, pte } = tracked(8);
  for (const p of [1, 3, 6]) write(p);
  tracker.unmap(2, 5);
  assert.deepEqual(tracker.bitmap.toArray(), [3], 'the unmapped range was harvested first');
  assert.ok(pte(1) & PTE_DIRTY && pte(6) & PTE_DIRTY, 'pages outside the range keep their PTEs and D bits');
  assert.equal(pte(3), 0);
  tracker.scan();
  assert.deepEqual(tracker.bitmap.toArray(), [1, 3, 6]);
});
