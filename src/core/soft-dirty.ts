import { InvalidArgumentError } from './errors.js';
import type { Mm } from './mm.js';
import { MAX_VPN } from './pagetable.js';
import { type MmWalk, type WalkOps, walkPageRange } from './pagewalk.js';
import { PteChange, type WalkLocals, modifyPte, walkThenFlush } from './pte-modify.js';
import { PTE_NONE, PTE_PRESENT, PTE_SOFT_DIRTY, PTE_SPECIAL, PTE_UFFD_MARKER, PTE_UFFD_WP, PTE_WRITE, ptePfn } from './pte.js';
import { VM_PFNMAP, VM_SOFTDIRTY, type Vma } from './vma.js';

/**
 * Soft-dirty, on a machine built with it (MachineOptions.softDirty,
 * CONFIG_MEM_SOFT_DIRTY): whole-process dirty tracking. `echo 4 >
 * /proc/PID/clear_refs` (clearRefsSoftDirty) clears the soft-dirty bit of
 * every PTE and write-protects it, and clears VM_SOFTDIRTY of every VMA,
 * which makes later faults install read-only PTEs; the next write to a page
 * takes a fault that sets the bit again (fault.ts) — hardware D-bit updates
 * never set it, which is why clear_refs must write-protect. Bit 55 of
 * /proc/PID/pagemap (readPagemap) reads it, and is set for every page of a
 * VMA that still has VM_SOFTDIRTY — a new mapping (mmap, or mmap after
 * munmap) reads as dirty as a whole, since its old PTE bits are gone with the
 * unmap. mprotect keeps the bits (it only removes write permission). A VMA
 * merged with a soft-dirty one reads dirty as a whole (Mm.mergeVmas): the
 * false positives merging causes in Linux.
 *
 * Unlike the mapping helpers this walks one process's page tables by
 * address, and skips PFN-map VMAs (a TTM BO mapping) as Linux does: it
 * cannot track device buffer objects.
 */

const CLEAR_REFS_SOFT_DIRTY = 4;

/** The clear_refs walk's locals (WalkLocals, for the checker). */
class ClearRefsWalk implements WalkLocals {
  total = 0;
  vmaIndex = 0;
  readonly pte: PteChange;

  constructor(mm: Mm) {
    this.pte = new PteChange(mm.machine);
    this.pte.resetWindow(0, MAX_VPN);
  }
}

function testWalk(vma: Vma, walk: MmWalk<ClearRefsWalk>): number {
  if (vma.flags & VM_PFNMAP) return 1;
  walk.private.vmaIndex++;
  return 0;
}

function clearSoftDirty(table: Int32Array, from: number, to: number, base: number, walk: MmWalk<ClearRefsWalk>): number {
  const w = walk.private;
  for (let i = from; i < to; i++) {
    const pte = table[i]!;
    if (!(pte & PTE_PRESENT)) continue;
    modifyPte(walk.mm, table, i, base + i, pte, 0, PTE_WRITE | PTE_SOFT_DIRTY, w.pte);
    w.total++;
  }
  return 0;
}

const clearOps: WalkOps<ClearRefsWalk> = { testWalk, pteTable: clearSoftDirty };

/**
 * Write `type` to /proc/PID/clear_refs of `mm`; only 4 (soft-dirty) is
 * modelled. Every PTE change goes through modifyPte; one TLB flush of the
 * whole mm follows the walk, after every PTE lock is released, with the
 * mm's flush-pending count raised meanwhile (so a concurrent walker that
 * finds a PTE already read-only knows a flush is still to come).
 */
export function clearRefs(mm: Mm, type = CLEAR_REFS_SOFT_DIRTY): void {
  if (type !== CLEAR_REFS_SOFT_DIRTY) throw new InvalidArgumentError(`clear_refs type ${type} is not modelled (only 4, soft-dirty)`);
  if (!mm.machine.config.softDirty) throw new InvalidArgumentError('clear_refs 4: the machine has no soft-dirty tracking (MachineOptions.softDirty)');
  for (const v of mm.vmas) v.flags &= ~VM_SOFTDIRTY;
  const end = MAX_VPN * mm.pageSize;
  const machine = mm.machine;
  const w = new ClearRefsWalk(mm);
  machine.walkObserver?.(w);
  const range = mm.notifyStart(0, end, 'clear');
  walkThenFlush(mm, () => walkPageRange(mm, 0, end, clearOps, w), () => {
    if (!machine.config.scanWithoutTlbFlush) machine.flushTlbMm(mm);
    mm.notifyEnd(range);
  });
}

/** clearRefs(mm, 4). */
export function clearRefsSoftDirty(mm: Mm): void {
  clearRefs(mm, CLEAR_REFS_SOFT_DIRTY);
}

export const PM_PFN_MASK = (1n << 55n) - 1n;
export const PM_SOFT_DIRTY = 1n << 55n;
export const PM_UFFD_WP = 1n << 57n;
export const PM_FILE = 1n << 61n;
export const PM_SWAP = 1n << 62n;
export const PM_PRESENT = 1n << 63n;

/**
 * Read /proc/PID/pagemap for `pages` pages from page-aligned `va`: one
 * 64-bit entry per page (pfn, soft-dirty, uffd-wp, file, swap, present).
 * The exclusively-mapped bit (56) is not modelled and always 0.
 */
export function readPagemap(mm: Mm, va: number, pages: number): BigUint64Array {
  const ps = mm.pageSize;
  if (!Number.isInteger(va) || va < 0 || va % ps !== 0) throw new InvalidArgumentError(`pagemap offset 0x${va.toString(16)} is not page aligned`);
  if (!Number.isInteger(pages) || pages < 0) throw new InvalidArgumentError(`pagemap length ${pages} is not a whole number of entries`);
  const out = new BigUint64Array(pages);
  for (let i = 0; i < pages; i++) {
    const a = va + i * ps;
    const vma = mm.findVma(a);
    if (vma === null) continue;
    const pte = mm.readPte(a / ps);
    let e = 0n;
    if (pte & PTE_PRESENT) {
      e = PM_PRESENT | BigInt(ptePfn(pte));
      if (pte & PTE_SOFT_DIRTY) e |= PM_SOFT_DIRTY;
      if (pte & PTE_UFFD_WP) e |= PM_UFFD_WP;
      // Page-cache pages of shmem; a PFN map has no struct page, so no "file" bit.
      if (pte & PTE_SPECIAL && !(vma.flags & VM_PFNMAP)) e |= PM_FILE;
    } else if (pte === PTE_UFFD_MARKER) {
      e = PM_SWAP | PM_UFFD_WP;
    } else if (pte !== PTE_NONE) {
      e = PM_SWAP;
    }
    if (vma.flags & VM_SOFTDIRTY) e |= PM_SOFT_DIRTY;
    out[i] = e;
  }
  return out;
}
