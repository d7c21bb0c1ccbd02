import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AccessBlockedError, Bitmap, Machine, PTE_DIRTY, PTE_WRITE, Step, VivtCpu, cleanRecordSharedMappingRange } from '../../src/index.js';
import { pteAt } from './fixtures.js';

const PS = 4096;

function setup() {
  const machine = new Machine({ arch: 'vivt', cpus: 2 });
  const bo = machine.createMapping(4);
  const mm = machine.createMm();
  const vma = mm.mmap(bo, { pages: 4 });
  const cpu = machine.cpus[0] as VivtCpu;
  const mem = (p: number) => bo.page(p)![0];
  return { machine, bo, mm, vma, cpu, mem };
}

test('vivt: a write stays in the writer\'s cache line until flushed; the writer reads its own data, memory does not have it', () => {
  const { machine, mm, vma, cpu, mem } = setup();
  assert.ok(cpu instanceof VivtCpu);
  cpu.write8(mm, vma.start, 42);
  assert.equal(cpu.read8(mm, vma.start), 42);
  assert.equal(mem(0), 0, 'not in memory yet');
  assert.equal(machine.cpus[1]!.read8(mm, vma.start), 0, 'another CPU sees memory');
  assert.deepEqual(cpu.dirtyLines(mm.id), [vma.start / PS]);
  machine.flushCacheRange(mm, vma.start, vma.end);
  assert.equal(mem(0), 42);
  assert.deepEqual(cpu.dirtyLines(mm.id), []);
});

test('vivt: eviction writes a line back (4 lines, round robin)', () => {
  const { mm, vma, cpu, mem } = setup();
  const bo2 = mm.machine.createMapping(4);
  const v2 = mm.mmap(bo2, { pages: 4 });
  cpu.write8(mm, vma.start, 7);
  for (let p = 0; p < 4; p++) cpu.read8(mm, v2.start + p * PS);
  assert.equal(mem(0), 7);
  assert.equal(cpu.writebacks, 1);
});

test('vivt: a write through a stale TLB entry after the deferred clean lands in the cache; clean-record returns with it unrecorded in memory', () => {
  const { machine, bo, mm, vma, cpu, mem } = setup();
  cpu.write8(mm, vma.start, 1);
  let raced = false;
  machine.stepHook = (kind, actor) => {
    if (actor !== -1 || kind !== Step.PteCommitted || raced) return;
    raced = true;
    cpu.write8(mm, vma.start, 2);
  };
  const bitmap = new Bitmap(4);
  cleanRecordSharedMappingRange(bo, 0, 4, 0, bitmap, { start: 0, end: 0 });
  machine.stepHook = null;
  assert.equal(raced, true);
  assert.deepEqual(bitmap.toArray(), [0]);
  // The consumer copies recorded pages from memory after the call returns.
  assert.equal(mem(0), 1, 'the racing write is still in the cache when the consumer reads memory');
  const again = new Bitmap(4);
  cleanRecordSharedMappingRange(bo, 0, 4, 0, again, { start: 0, end: 0 });
  assert.deepEqual(again.toArray(), [], 'and the PTE is clean, so no later call records it: the write is lost to the device');
  assert.equal(mem(0), 2, 'the next call\'s cache flush wrote it to memory, but nobody copies that page');
});

test('vivt, both strict orders: once the PTE is cleared a racing write faults on the read-only PTE and waits for the PTE lock; it is recorded next time', () => {
  for (const order of ['strict', 'strict-tlb-first'] as const) {
    const { machine, bo, mm, vma, cpu, mem } = setup();
    cpu.write8(mm, vma.start, 1);
    let blocked: unknown = null;
    machine.stepHook = (kind, actor) => {
      if (actor !== -1 || kind !== Step.PteCommitted || blocked !== null) return;
      try {
        cpu.write8(mm, vma.start, 2);
      } catch (e) {
        blocked = e;
      }
    };
    const bitmap = new Bitmap(4);
    cleanRecordSharedMappingRange(bo, 0, 4, 0, bitmap, { start: 0, end: 0 }, { order });
    machine.stepHook = null;
    assert.ok(blocked instanceof AccessBlockedError && blocked.reason === 'ptl', order);
    assert.deepEqual(bitmap.toArray(), [0]);
    assert.equal(mem(0), 1, `${order}: the first write was flushed to memory before the PTE changed`);
    assert.equal(pteAt(vma, 0) & (PTE_WRITE | PTE_DIRTY), 0, `${order}: write-protected as well as clean`);
    cpu.write8(mm, vma.start, 2); // the retry: a wp fault makes it writable and dirty
    const again = new Bitmap(4);
    cleanRecordSharedMappingRange(bo, 0, 4, 0, again, { start: 0, end: 0 }, { order });
    assert.deepEqual(again.toArray(), [0], `${order}: the next call records it`);
    assert.equal(mem(0), 2, `${order}: after flushing the line, so the consumer copies the new data`);
  }
});

test('vivt, the seed thread\'s strict order: a write between flush_cache_page and ptep_clear_flush stays in the cache and is lost; flushing the TLB first closes the window', () => {
  const run = (order: 'strict' | 'strict-tlb-first') => {
    const { machine, bo, mm, vma, cpu, mem } = setup();
    cpu.write8(mm, vma.start, 1);
    const kinds: number[] = [];
    machine.stepHook = (kind, actor) => {
      if (actor !== -1) return;
      kinds.push(kind);
      if (kind === Step.CacheFlushed) cpu.write8(mm, vma.start, 2); // through the still-valid W D entry
    };
    const bitmap = new Bitmap(4);
    cleanRecordSharedMappingRange(bo, 0, 4, 0, bitmap, { start: 0, end: 0 }, { order });
    machine.stepHook = null;
    const consumed = mem(0);
    const again = new Bitmap(4);
    cleanRecordSharedMappingRange(bo, 0, 4, 0, again, { start: 0, end: 0 }, { order });
    return { kinds, recorded: bitmap.toArray(), consumed, later: again.toArray(), memory: mem(0) };
  };
  const seed = run('strict');
  assert.deepEqual(seed.kinds, [Step.PteRead, Step.CacheFlushed, Step.PteCleared, Step.PteCommitted, Step.BeforeVmaFlush, Step.AfterVmaFlush]);
  assert.deepEqual(seed.recorded, [0]);
  assert.equal(seed.consumed, 1, 'the consumer after return reads memory without the racing write (it is in the cache)');
  assert.deepEqual(seed.later, [], 'the PTE is clean and read-only: no later call records the page');
  assert.equal(seed.memory, 2, 'the data reached memory only with the next call\'s cache flush');
  const tlbFirst = run('strict-tlb-first');
  assert.ok(!tlbFirst.kinds.includes(Step.CacheFlushed), 'no step between the cache flush and the clear: the TLB entry is gone before the flush');
});
