import { OutOfMemoryError, requireInteger } from './errors.js';
import { insertPfn, VM_FAULT_OK, type VmFault, type VmOperations } from './fault.js';
import type { Mapping } from './mapping.js';
import type { Mm } from './mm.js';
import { PAGES_PER_PMD } from './pagetable.js';
import { VM_UFFD_WP } from './vma.js';

/**
 * A memfd-like file (Machine.createMapping(n, { kind: 'shmem', ops:
 * shmemFileOps() })): the memory the userspace trackers (uffd-wp,
 * soft-dirty) work on, and what the native backend maps for real. Its pages
 * are page cache: a page that has none (never written, or hole-punched) gets
 * a fresh zeroed frame on first fault; PTEs are PTE_SPECIAL only in the
 * simulator's sense "the frame belongs to the mapping, zap does not free it".
 */

/** Pages a read fault maps around the faulting one (fault_around_bytes = 64 KiB). */
const FAULT_AROUND_PAGES = 16;

export function shmemFileOps(): VmOperations {
  return {
    fault(vmf: VmFault): number {
      const { vma } = vmf;
      const mapping = vma.mapping;
      if (mapping.pfnAt(vmf.pgoff) < 0) mapping.populate(vmf.pgoff, 1);
      insertPfn(vma, vmf.address, mapping.pfnAt(vmf.pgoff), true);
      // Read faults map the neighbours that are already in the page cache,
      // except where userfaultfd write-protects (uffd_disable_fault_around).
      if (vmf.write || vma.flags & VM_UFFD_WP) return VM_FAULT_OK;
      const ps = vma.mm.pageSize;
      const window = FAULT_AROUND_PAGES * ps;
      const from = Math.max(vma.start, vmf.address - (vmf.address % window));
      const to = Math.min(vma.end, from + window);
      for (let va = from; va < to; va += ps) {
        const pfn = mapping.pfnAt(vma.pgoffAt(va));
        if (pfn >= 0) insertPfn(vma, va, pfn, true);
      }
      return VM_FAULT_OK;
    },
  };
}

/**
 * madvise(MADV_DONTNEED) on a shared mapping: drop the PTEs of
 * [va, va + length); the data stays in the file. Protected pages of a
 * uffd-wp registered VMA keep a marker; a PTE table covered whole and left
 * empty is freed (CONFIG_PT_RECLAIM). Unmapped parts are skipped and
 * reported with ENOMEM afterwards, as Linux does.
 */
export function madviseDontneed(mm: Mm, va: number, length: number): void {
  requireInteger('madvise length', length, 1);
  const end = va + length;
  let covered = va;
  let hole = false;
  const pmd = PAGES_PER_PMD * mm.pageSize;
  for (const v of mm.vmas) {
    if (v.end <= va || v.start >= end) continue;
    if (v.start > covered) hole = true;
    const s = Math.max(va, v.start);
    const e = Math.min(end, v.end);
    mm.zapRange(s, e, 'clear', true);
    // CONFIG_PT_RECLAIM: a PTE table the zap covered whole and left empty is freed.
    const lo = Math.ceil(s / pmd) * PAGES_PER_PMD;
    const hi = Math.floor(e / pmd) * PAGES_PER_PMD;
    if (lo < hi) mm.pageTable.freeEmptyTables(lo, hi);
    covered = v.end;
  }
  if (hole || covered < end) throw new OutOfMemoryError(`madvise range 0x${va.toString(16)}+${length} is not fully mapped (ENOMEM)`);
}

/**
 * fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) on pgoffs
 * [first, first + n): unmap them from every VMA of every process (protected
 * pages keep their uffd-wp markers), then free the pages. A later access
 * faults in a zeroed page.
 */
export function punchHole(mapping: Mapping, first: number, n: number): void {
  requireInteger('punch-hole first page', first, 0, mapping.nrPages - 1);
  requireInteger('punch-hole pages', n, 1, mapping.nrPages - first);
  for (const v of mapping.vmasIntersecting(first, n)) {
    const s = Math.max(first, v.pgoff);
    const e = Math.min(first + n, v.pgoffEnd);
    if (s < e) v.mm.zapRange(v.addressOf(s), v.addressOf(e), 'clear', true);
  }
  mapping.release(first, n);
}
