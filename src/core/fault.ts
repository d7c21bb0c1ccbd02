import { AccessBlockedError, BusError, SegvError } from './errors.js';
import type { Cpu } from './cpu.js';
import type { Mm } from './mm.js';
import {
  mkPte, ptePfn,
  PTE_DIRTY, PTE_NONE, PTE_PRESENT, PTE_SOFT_DIRTY, PTE_SPECIAL, PTE_UFFD_MARKER, PTE_UFFD_WP, PTE_WRITE, PTE_YOUNG,
} from './pte.js';
import { type FaultKind, Step } from './step.js';
import { userfaultWpFault } from './uffd-wp.js';
import { VM_READ, VM_SHARED, VM_SOFTDIRTY, VM_UFFD_WP, VM_WRITE, type Vma } from './vma.js';

/** Outcomes a vm_ops callback returns. */
export const VM_FAULT_OK = 0;
/** The object has no page there, or the callback refuses: the access gets SIGBUS. */
export const VM_FAULT_SIGBUS = 1;
/** Try again later (an external lock is held): set vmf.retryUntil to what to wait for. */
export const VM_FAULT_RETRY = 2;
/**
 * pfnMkwrite only: the handler finished the fault itself (or found nothing to
 * do); core mm leaves the PTE alone and the access retries.
 */
export const VM_FAULT_NOPAGE = 3;

/** What a fault handler is told about the fault. */
export interface VmFault {
  readonly vma: Vma;
  /** Page-aligned faulting VA. */
  readonly address: number;
  readonly pgoff: number;
  readonly write: boolean;
  readonly cpu: number;
  /** The PTE as the fault found it (`vmf->orig_pte`). */
  origPte: number;
  /** Set by a callback returning VM_FAULT_RETRY: settles when a retry can progress. */
  retryUntil: Promise<unknown> | null;
}

/**
 * The vm_ops table of a mapping. `fault` installs PTEs for a missing page
 * (usually with insertPfn / faultAround); `pfnMkwrite` is called before a
 * read-only PTE of a shared writable VMA becomes writable and may refuse, ask
 * for a retry, or finish the fault itself (finishMkwriteFault, then
 * VM_FAULT_NOPAGE); `mprotect` may veto a protection change (returns a reason).
 */
export interface VmOperations {
  fault(vmf: VmFault): number;
  pfnMkwrite?(vmf: VmFault): number;
  mprotect?(vma: Vma, start: number, end: number, newFlags: number): string | null;
  /**
   * The file's mmap handler: may refuse a new mapping of `pages` pages from
   * `pgoff` with VMA flags `flags` (returns a reason), before anything changes.
   */
  mmap?(flags: number, pgoff: number, pages: number): string | null;
  /**
   * Called by munmap for [start, end) of the VMA before its PTEs are zapped.
   * Not a kernel hook: zapping special (PFN) PTEs drops their D bits, so a
   * user munmap of a PAGETABLE-tracked BO would lose writes; a driver uses
   * this to harvest them first (see docs/architecture.md).
   */
  beforeUnmap?(vma: Vma, start: number, end: number): void;
}

/**
 * Install a PFN PTE at va unless one is present (vmf_insert_pfn). Entries are
 * created clean and not young; writable only when asked and the VMA is shared
 * and writable (private mappings copy on write). Returns whether one was made.
 */
export function insertPfn(vma: Vma, va: number, pfn: number, writable: boolean): boolean {
  const mm = vma.mm;
  const vpn = va / mm.pageSize;
  if (mm.pageTable.get(vpn) !== PTE_NONE) return false;
  // Soft-dirty tracking wants write notification once clear_refs has reset the VMA.
  const writeNotify = mm.machine.config.softDirty && !(vma.flags & VM_SOFTDIRTY);
  const w = writable && !writeNotify && (vma.flags & (VM_SHARED | VM_WRITE)) === (VM_SHARED | VM_WRITE);
  mm.pageTable.set(vpn, mkPte(pfn, PTE_PRESENT | PTE_SPECIAL | (w ? PTE_WRITE : 0)));
  return true;
}

/**
 * Fault-around as TTM does it: map up to `count` pages starting at the faulting
 * page, stopping at the VMA's end, the mapping's end or a page without a frame.
 * The faulting page itself must have a frame, else SIGBUS.
 */
export function faultAround(vmf: VmFault, count: number, writable: boolean): number {
  const { vma } = vmf;
  const mapping = vma.mapping;
  if (mapping.pfnAt(vmf.pgoff) < 0) return VM_FAULT_SIGBUS;
  const ps = vma.mm.pageSize;
  for (let i = 0; i < count; i++) {
    const va = vmf.address + i * ps;
    if (va >= vma.end) break;
    const pfn = mapping.pfnAt(vmf.pgoff + i);
    if (pfn < 0) break;
    insertPfn(vma, va, pfn, writable);
  }
  return VM_FAULT_OK;
}

/** vm_ops of a plain device file: fault-around of `prefault` pages, PTEs writable in shared writable VMAs. */
export function deviceFileOps(prefault = 16): VmOperations {
  return {
    fault: (vmf) => faultAround(vmf, prefault, true),
  };
}

/**
 * handle_mm_fault for one page: resolve why `cpu` could not access `va` and
 * fix the page tables, or throw SegvError / BusError / AccessBlockedError.
 * The caller retries the access afterwards. Returns the kind of fault handled.
 */
export function handleFault(cpu: Cpu, mm: Mm, va: number, write: boolean): FaultKind {
  const vma = mm.findVma(va);
  if (vma === null) throw new SegvError(`no mapping at 0x${va.toString(16)}`, cpu.id, va, write);
  if (write ? !(vma.flags & VM_WRITE) : !(vma.flags & VM_READ)) {
    throw new SegvError(`${write ? 'write' : 'read'} not permitted by ${vma}`, cpu.id, va, write);
  }
  const ps = mm.pageSize;
  const vpn = Math.floor(va / ps);
  const address = vpn * ps;
  // Faults take the page-table lock; a walker suspended at a step point holds it.
  if (mm.pageTable.isLocked(vpn)) throw new AccessBlockedError('ptl', cpu.id, va, write, null);
  let pte = mm.readPte(vpn);
  const vmf: VmFault = { vma, address, pgoff: vma.pgoffAt(address), write, cpu: cpu.id, origPte: pte, retryUntil: null };
  const shared = (vma.flags & VM_SHARED) !== 0;
  // x86 pte_mkdirty also sets the soft-dirty bit; hardware D-bit updates do not.
  const softDirty = cpu.machine.config.softDirty ? PTE_SOFT_DIRTY : 0;
  // A uffd-wp marker: fault the page in as if the slot were empty; in a
  // registered VMA it stays protected (below), elsewhere the marker just goes.
  const marker = pte === PTE_UFFD_MARKER && (vma.flags & VM_UFFD_WP) !== 0;
  if (pte === PTE_UFFD_MARKER && !marker) {
    mm.pageTable.set(vpn, PTE_NONE);
    pte = PTE_NONE;
  }
  if (marker) {
    mm.pageTable.set(vpn, PTE_NONE);
    pte = PTE_NONE;
  } else if (write && pte & PTE_UFFD_WP && vma.flags & VM_UFFD_WP) {
    // Sync mode throws (the handler is told); async mode clears the bit and the fault goes on.
    pte = userfaultWpFault(cpu, vma, vpn, pte);
  }
  vmf.origPte = pte; // what the fault goes on from (a marker or an async uffd-wp resolution changed it)

  let kind: FaultKind;
  if (!(pte & PTE_PRESENT)) {
    if (write && !shared) {
      copyOnWrite(cpu, vma, vpn, vmf, pte);
      kind = 'cow';
    } else {
      try {
        check(vma.ops.fault(vmf), vmf, 'fault');
      } finally {
        if (marker) rearmUffdWp(mm, vpn);
      }
      if (write && softDirty && !marker && mm.readPte(vpn) & PTE_PRESENT) mm.writePte(vpn, mm.readPte(vpn) | softDirty);
      kind = 'missing';
    }
  } else if (write && !(pte & PTE_WRITE)) {
    if (!shared) {
      copyOnWrite(cpu, vma, vpn, vmf, pte);
      kind = 'cow';
    } else {
      const mkwrite = vma.ops.pfnMkwrite;
      const r = mkwrite ? mkwrite(vmf) : VM_FAULT_OK;
      if (r !== VM_FAULT_NOPAGE) {
        if (!(r === VM_FAULT_RETRY && cpu.machine.config.mkwriteRetryIgnored)) check(r, vmf, 'mkwrite');
        // The handler has released its locks; the PTE becomes writable only now.
        if (mkwrite) cpu.machine.step(Step.MkwriteReturned, cpu.id, mm, vpn, pte);
        finishMkwriteFault(vmf);
      }
      kind = 'wp';
    }
  } else if (write && !(pte & PTE_DIRTY) && !cpu.machine.arch.hardwareDirty) {
    // No hardware dirty bit: a writable clean page traps so software can mark it.
    mm.writePte(vpn, pte | PTE_DIRTY | PTE_YOUNG | softDirty);
    kind = 'dirty';
  } else {
    kind = 'spurious';
  }
  // The faulting CPU never keeps the entry that made it fault.
  cpu.tlb.flushPage(mm.id, vpn);
  cpu.countFault(kind, mm, va);
  return kind;

  function check(result: number, f: VmFault, reason: 'fault' | 'mkwrite'): void {
    if (result === VM_FAULT_OK) return;
    if (result === VM_FAULT_RETRY) throw new AccessBlockedError(reason, cpu.id, va, write, f.retryUntil);
    throw new BusError(`${reason} handler of ${vma} refused pgoff ${f.pgoff}`, cpu.id, va, write);
  }
}

/** After faulting in a page that had a uffd-wp marker: the new entry is protected (read-only), or the marker returns. */
function rearmUffdWp(mm: Mm, vpn: number): void {
  const now = mm.readPte(vpn);
  mm.pageTable.set(vpn, now & PTE_PRESENT ? (now | PTE_UFFD_WP) & ~PTE_WRITE : PTE_UFFD_MARKER);
}

/**
 * finish_mkwrite_fault + wp_page_reuse: if the PTE is still the one the fault
 * found, make it writable, dirty and young (and soft-dirty, as x86's
 * pte_mkdirty does); otherwise give up (the access retries). Returns whether it did.
 */
export function finishMkwriteFault(vmf: VmFault): boolean {
  const mm = vmf.vma.mm;
  const vpn = vmf.address / mm.pageSize;
  if (mm.readPte(vpn) !== vmf.origPte) return false;
  const softDirty = mm.machine.config.softDirty ? PTE_SOFT_DIRTY : 0;
  mm.writePte(vpn, vmf.origPte | PTE_WRITE | PTE_DIRTY | PTE_YOUNG | softDirty);
  return true;
}

/** Private mapping: give the process its own copy of the page, writable and dirty. */
function copyOnWrite(cpu: Cpu, vma: Vma, vpn: number, vmf: VmFault, pte: number): void {
  const machine = cpu.machine;
  const srcPfn = pte & PTE_PRESENT ? ptePfn(pte) : vma.mapping.pfnAt(vmf.pgoff);
  if (srcPfn < 0) throw new BusError(`${vma} has no page at pgoff ${vmf.pgoff}`, cpu.id, vmf.address, true);
  const pfn = machine.phys.allocFrame();
  machine.phys.frame(pfn).set(machine.phys.frame(srcPfn));
  if (pte & PTE_PRESENT && !(pte & PTE_SPECIAL)) machine.phys.freeFrame(ptePfn(pte));
  // Anonymous (no PTE_SPECIAL): freed when zapped.
  const softDirty = machine.config.softDirty ? PTE_SOFT_DIRTY : 0;
  vma.mm.writePte(vpn, mkPte(pfn, PTE_PRESENT | PTE_WRITE | PTE_DIRTY | PTE_YOUNG | softDirty));
  if (pte & PTE_PRESENT) machine.flushTlbPage(vma.mm, vmf.address, cpu.id);
}
