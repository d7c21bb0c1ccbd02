import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Bitmap, InvalidArgumentError, Machine, SegvError, cleanRecordSharedMappingRange, wpSharedMappingRange,
} from '../../src/index.js';
import { snapshotMachine } from './fixtures.js';

const PS = 4096;

function world() {
  const machine = new Machine({ cpus: 2 });
  const bo = machine.createMapping(8);
  const mm = machine.createMm();
  const vma = mm.mmap(bo, { pages: 8 });
  machine.cpus[0]!.write8(mm, vma.start, 1);
  machine.cpus[1]!.write8(mm, vma.start + 3 * PS, 1);
  const ro = mm.mmap(bo, { pages: 2, prot: 'r' });
  machine.cpus[1]!.read8(mm, ro.start);
  return { machine, bo, mm, vma, ro };
}

/** fn must throw an error of `type` and leave every PTE, TLB entry, counter and VMA as it was. */
function rejectsWithoutChange(name: string, type: new (...a: never[]) => Error, fn: (w: ReturnType<typeof world>) => unknown): void {
  test(`bad input: ${name} → ${type.name}, no state change`, () => {
    const w = world();
    const bitmapWords = new Bitmap(8);
    const before = snapshotMachine(w.machine);
    assert.throws(() => fn(w), type);
    assert.equal(snapshotMachine(w.machine), before);
    assert.deepEqual([...bitmapWords.words], [0]);
  });
}

const range = () => ({ start: 0, end: 0 });
rejectsWithoutChange('pgoff range beyond the mapping', InvalidArgumentError, ({ bo }) => cleanRecordSharedMappingRange(bo, 6, 4, 0, new Bitmap(16), range()));
rejectsWithoutChange('negative first index', InvalidArgumentError, ({ bo }) => wpSharedMappingRange(bo, -1, 2));
rejectsWithoutChange('nr = 0 (clean-record)', InvalidArgumentError, ({ bo }) => cleanRecordSharedMappingRange(bo, 0, 0, 0, new Bitmap(8), range()));
rejectsWithoutChange('nr = 0 (wp)', InvalidArgumentError, ({ bo }) => wpSharedMappingRange(bo, 0, 0));
rejectsWithoutChange('fractional nr', InvalidArgumentError, ({ bo }) => wpSharedMappingRange(bo, 0, 1.5));
rejectsWithoutChange('bitmap too small', InvalidArgumentError, ({ bo }) => cleanRecordSharedMappingRange(bo, 0, 8, 0, new Bitmap(7), range()));
rejectsWithoutChange('bitmapPgoff above firstIndex', InvalidArgumentError, ({ bo }) => cleanRecordSharedMappingRange(bo, 2, 2, 3, new Bitmap(8), range()));
rejectsWithoutChange('non-integer range bound', InvalidArgumentError, ({ bo }) => cleanRecordSharedMappingRange(bo, 0, 8, 0, new Bitmap(8), { start: NaN, end: 0 }));
rejectsWithoutChange('unaligned mmap address', InvalidArgumentError, ({ mm, bo }) => mm.mmap(bo, { pages: 1, address: 0x1234 }));
rejectsWithoutChange('overlapping mmap', InvalidArgumentError, ({ mm, bo, vma }) => mm.mmap(bo, { pages: 2, address: vma.start + PS }));
rejectsWithoutChange('mmap beyond the mapping', InvalidArgumentError, ({ mm, bo }) => mm.mmap(bo, { pgoff: 6, pages: 3 }));
rejectsWithoutChange('mmap of zero pages', InvalidArgumentError, ({ mm, bo }) => mm.mmap(bo, { pages: 0 }));
rejectsWithoutChange('shared writable mmap without write access to the file', InvalidArgumentError, ({ mm, bo }) => mm.mmap(bo, { pages: 1, mayWrite: false }));
rejectsWithoutChange('unaligned munmap', InvalidArgumentError, ({ mm, vma }) => mm.munmap(vma.start + 1, PS));
rejectsWithoutChange('munmap of zero length', InvalidArgumentError, ({ mm, vma }) => mm.munmap(vma.start, 0));
rejectsWithoutChange('write outside any VMA', SegvError, ({ machine, mm }) => machine.cpus[0]!.write8(mm, 0x1000, 1));
rejectsWithoutChange('multi-page write running past the VMA end', SegvError, ({ machine, mm, vma }) => machine.cpus[0]!.write(mm, vma.end - 10, new Uint8Array(20)));
// cpu0 never cached the read-only page (x86 drops a cached entry for a faulting address, which is no state).
rejectsWithoutChange('write to a read-only VMA', SegvError, ({ machine, mm, ro }) => machine.cpus[0]!.write8(mm, ro.start, 1));
rejectsWithoutChange('unknown arch', InvalidArgumentError, () => new Machine({ arch: 'arm' as 'x86' }));
rejectsWithoutChange('page size not a power of two', InvalidArgumentError, () => new Machine({ pageSize: 3000 }));
rejectsWithoutChange('access at a negative address', SegvError, ({ machine, mm }) => machine.cpus[0]!.write32(mm, -4, 1));
rejectsWithoutChange('access beyond the address space', SegvError, ({ machine, mm }) => machine.cpus[0]!.read8(mm, 2 ** 40));
