import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Machine, PTE_DIRTY, PTE_WRITE, PTE_YOUNG, SegvError, Step } from '../../src/index.js';
import { propertySeed, pteAt } from './fixtures.js';

const PS = 4096;

function one(opts: ConstructorParameters<typeof Machine>[0] = {}) {
  const machine = new Machine({ cpus: 2, ...opts });
  const bo = machine.createMapping(8);
  const mm = machine.createMm();
  const vma = mm.mmap(bo, { pages: 8 });
  return { machine, bo, mm, vma, cpu: machine.cpus[0]!, other: machine.cpus[1]! };
}

test('a write through a writable dirty TLB entry touches no PTE', () => {
  const { mm, vma, cpu } = one();
  cpu.write8(mm, vma.start, 1);
  const vpn = vma.start / PS;
  mm.pageTable.set(vpn, mm.readPte(vpn) & ~PTE_DIRTY); // clean it behind the TLB's back
  const hits = cpu.counters.tlbHits;
  cpu.write8(mm, vma.start + 1, 2);
  assert.equal(cpu.counters.tlbHits, hits + 1);
  assert.equal(mm.readPte(vpn) & PTE_DIRTY, 0, 'the PTE stayed clean');
});

test('a write through a writable clean entry sets D in the in-memory PTE; if the PTE lost write permission meanwhile it faults', () => {
  const { mm, vma, cpu } = one();
  cpu.read8(mm, vma.start);
  assert.equal(pteAt(vma, 0) & (PTE_DIRTY | PTE_YOUNG), PTE_YOUNG, 'a read sets A only');
  cpu.write8(mm, vma.start, 1);
  assert.ok(pteAt(vma, 0) & PTE_DIRTY);
  assert.equal(cpu.counters.dirtyBitSets, 1);
  assert.equal(cpu.tlb.peek(mm.id, vma.start / PS)! & PTE_DIRTY, PTE_DIRTY);

  cpu.read8(mm, vma.start + PS); // clean writable entry for page 1
  const vpn1 = vma.start / PS + 1;
  mm.pageTable.set(vpn1, mm.readPte(vpn1) & ~PTE_WRITE); // write-protected, no flush yet
  const wp = cpu.counters.faults.wp;
  cpu.write8(mm, vma.start + PS, 1);
  assert.equal(cpu.counters.faults.wp, wp + 1, 'the locked RMW saw a read-only PTE and faulted');
  assert.ok(pteAt(vma, 1) & PTE_WRITE && pteAt(vma, 1) & PTE_DIRTY, 'the wp fault made it writable and dirty');
});

test('on sw-dirty a writable clean page traps once so software sets D', () => {
  const { mm, vma, cpu } = one({ arch: 'sw-dirty' });
  cpu.read8(mm, vma.start);
  cpu.write8(mm, vma.start, 1);
  assert.equal(cpu.counters.faults.dirty, 1);
  assert.equal(cpu.counters.dirtyBitSets, 0);
  assert.ok(pteAt(vma, 0) & PTE_DIRTY);
  cpu.write8(mm, vma.start, 2);
  assert.equal(cpu.counters.faults.dirty, 1, 'no second trap');
});

test('reads and writes of any length and alignment round-trip, also across pages and through two processes', (t) => {
  const seed = propertySeed(77);
  t.diagnostic(`fast-check seed ${seed}`);
  fc.assert(
    fc.property(fc.nat(8 * PS - 1), fc.uint8Array({ minLength: 0, maxLength: 3 * PS }), (off, data) => {
      const { machine, bo, mm, vma, cpu, other } = one();
      const len = Math.min(data.length, 8 * PS - off);
      const src = data.subarray(0, len);
      cpu.write(mm, vma.start + off, src);
      const mm2 = machine.createMm();
      const v2 = mm2.mmap(bo, { pages: 8 });
      assert.deepEqual(other.read(mm2, v2.start + off, len), src);
    }),
    { seed, numRuns: 60 },
  );
});

test('typed accessors are little endian and work across a page boundary', () => {
  const { mm, vma, cpu, other } = one();
  const edge = vma.start + PS - 3;
  cpu.write32(mm, edge, 0xa1b2c3d4);
  assert.equal(other.read8(mm, edge), 0xd4);
  assert.equal(other.read32(mm, edge), 0xa1b2c3d4);
  cpu.write16(mm, edge + 4, 0xbeef);
  assert.equal(other.read16(mm, edge + 4), 0xbeef);
  cpu.writeF64(mm, edge, Math.PI);
  assert.equal(other.readF64(mm, edge), Math.PI);
  cpu.write64(mm, vma.start + 2 * PS - 4, 0x0123456789abcdefn);
  assert.equal(other.read64(mm, vma.start + 2 * PS - 4), 0x0123456789abcdefn);
  assert.equal(other.read32(mm, vma.start + 2 * PS - 4), 0x89abcdef);
});

test('typed accessors inside a page are little endian, byte by byte', () => {
  const { mm, vma, cpu, other } = one();
  const at = vma.start + 100;
  const bytes = (n: number) => Array.from({ length: n }, (_, i) => other.read8(mm, at + i));
  cpu.write16(mm, at, 0x1234);
  assert.deepEqual(bytes(2), [0x34, 0x12]);
  assert.equal(other.read16(mm, at), 0x1234);
  cpu.write32(mm, at, 0x01020304);
  assert.deepEqual(bytes(4), [4, 3, 2, 1]);
  cpu.write64(mm, at, 0x0102030405060708n);
  assert.deepEqual(bytes(8), [8, 7, 6, 5, 4, 3, 2, 1]);
  assert.equal(other.read64(mm, at), 0x0102030405060708n);
  cpu.writeF64(mm, at, 1);
  assert.deepEqual(bytes(8), [0, 0, 0, 0, 0, 0, 0xf0, 0x3f]);
  assert.equal(other.readF64(mm, at), 1);
  // The last bytes of a page still take the one-page path.
  cpu.write16(mm, vma.start + PS - 2, 0xabcd);
  assert.deepEqual([other.read8(mm, vma.start + PS - 2), other.read8(mm, vma.start + PS - 1), other.read8(mm, vma.start + PS)], [0xcd, 0xab, 0]);
});

test('a read running past the end of its VMA is a SIGSEGV before anything is read', () => {
  const { mm, vma, cpu } = one();
  const misses = cpu.counters.tlbMisses;
  assert.throws(() => cpu.read(mm, vma.end - 10, 20), SegvError);
  assert.equal(cpu.counters.tlbMisses, misses, 'no page of the range was touched');
});

test('TLB replacement is deterministic and bounded, and counters count hits and misses', () => {
  const run = () => {
    const machine = new Machine({ cpus: 1, tlbEntries: 4, tlbWays: 2 });
    const bo = machine.createMapping(16);
    const mm = machine.createMm();
    const vma = mm.mmap(bo, { pages: 16 });
    const cpu = machine.cpus[0]!;
    for (const p of [0, 2, 4, 0, 6, 2, 1, 3, 0]) cpu.read8(mm, vma.start + p * PS);
    return { entries: [...cpu.tlb.entries()].map((e) => e.vpn - vma.start / PS), c: cpu.counters };
  };
  const a = run();
  const b = run();
  assert.deepEqual(a, b);
  assert.equal(a.entries.length, 4);
  assert.equal(a.c.tlbHits + a.c.tlbMisses, 9);
  // Set 0 (even pages, 2 ways, round robin): 0,2 | 4 evicts 0 | 0 evicts 2 | 6 evicts 4 | 2 evicts 0 | 0 evicts 6.
  assert.deepEqual([...a.entries].sort(), [0, 1, 2, 3]);
  assert.equal(a.c.tlbHits, 0);
});

test('step points: a TLB fill and a D-bit set are offered to the hook with the CPU as actor', () => {
  const { machine, mm, vma, cpu } = one();
  const seen: string[] = [];
  machine.stepHook = (kind, actor, m, vpn) => seen.push(`${kind}:${actor}:${m.id}:${vpn - vma.start / PS}`);
  cpu.read8(mm, vma.start);
  cpu.write8(mm, vma.start, 1);
  assert.deepEqual(seen, [`${Step.TlbFill}:0:${mm.id}:0`, `${Step.DirtyBitSet}:0:${mm.id}:0`]);
});
