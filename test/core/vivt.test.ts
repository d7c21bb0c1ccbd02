import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bitmap, Machine, Step, VivtCpu, cleanRecordSharedMappingRange } from '../../src/index.js';

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

test('vivt: a write through a stale TLB entry after the clean lands in the cache; deferred clean-record returns with it unrecorded in memory, strict does not', () => {
  for (const strict of [false, true]) {
    const { machine, bo, mm, vma, cpu, mem } = setup();
    cpu.write8(mm, vma.start, 1);
    let raced = false;
    machine.stepHook = (kind, actor) => {
      if (actor !== -1 || kind !== Step.PteCommitted || raced) return;
      raced = true;
      try { cpu.write8(mm, vma.start, 2); } catch { raced = false; }
    };
    const bitmap = new Bitmap(4);
    cleanRecordSharedMappingRange(bo, 0, 4, 0, bitmap, { start: 0, end: 0 }, { strict });
    machine.stepHook = null;
    assert.deepEqual(bitmap.toArray(), [0]);
    // The consumer copies recorded pages from memory after the call returns.
    if (strict) {
      assert.equal(raced, true);
      assert.equal(mem(0), 1, 'strict: the first write was flushed; the racing write ran after the per-PTE TLB flush, so it re-dirtied the PTE');
      const again = new Bitmap(4);
      cleanRecordSharedMappingRange(bo, 0, 4, 0, again, { start: 0, end: 0 });
      assert.deepEqual(again.toArray(), [0], 'the next call records it');
      assert.equal(mem(0), 2, 'after flushing the cache first, so the consumer copies the new data');
    } else {
      assert.equal(raced, true);
      assert.equal(mem(0), 1, 'deferred: the racing write is still in the cache when the consumer reads memory');
      const again = new Bitmap(4);
      cleanRecordSharedMappingRange(bo, 0, 4, 0, again, { start: 0, end: 0 });
      assert.deepEqual(again.toArray(), [], 'and the PTE is clean, so no later call records it: the write is lost to the device');
      assert.equal(mem(0), 2, 'the next call\'s cache flush wrote it to memory, but nobody copies that page');
    }
  }
});
