import { InvalidArgumentError, OutOfMemoryError, WouldDeadlockError, requireInteger } from './errors.js';
import type { VmOperations } from './fault.js';
import type { Machine } from './machine.js';
import type { Mapping } from './mapping.js';
import type { MmuNotifier, NotifierEvent, NotifierRange } from './notifier.js';
import { MAX_VPN, PAGES_PER_PMD, PAGES_PER_PUD, PageTable, type PageTableState } from './pagetable.js';
import { PTE_DIRTY, PTE_HUGE, PTE_NONE, PTE_PRESENT, PTE_SPECIAL, PTE_UFFD_MARKER, PTE_UFFD_WP, PTE_WRITE, mkPte, ptePfn } from './pte.js';
import { VM_MAYWRITE, VM_PFNMAP, VM_RAND_READ, VM_READ, VM_SHARED, VM_SOFTDIRTY, VM_UFFD_WP, VM_WRITE, Vma } from './vma.js';

export type Protection = 'none' | 'r' | 'rw';

export interface MmapOptions {
  /** Number of pages to map. */
  pages: number;
  /** First pgoff of the mapping to map (default 0). */
  pgoff?: number;
  /** Default 'rw'. */
  prot?: Protection;
  /** MAP_SHARED (default) or MAP_PRIVATE. */
  shared?: boolean;
  /** Whether the file was opened for writing (VM_MAYWRITE); default true. */
  mayWrite?: boolean;
  /** A fixed, page-aligned address; it must not overlap an existing VMA. */
  address?: number;
  /** madvise(MADV_RANDOM). */
  randRead?: boolean;
  /** vm_ops for this VMA; default: the mapping's. */
  ops?: VmOperations;
}

let nextMmId = 0;
let layoutStamps = 0;

/** A copy of an Mm's state (saveState / restoreState). */
export interface MmState {
  pageTable: PageTableState;
  cpuMask: Uint8Array;
  tlbFlushPending: number;
  vmas: Vma[];
  /** The VMA layout stamp copied (-1: none yet). */
  layout: number;
  /** start, end, pgoff, flags per VMA. */
  vmaFields: number[];
}

/**
 * A simulated process address space (mm_struct): its VMAs, its page table,
 * the set of CPUs that may cache its translations (mm_cpumask), the
 * deferred-flush counter and its mmu-notifier subscriptions.
 */
export class Mm {
  readonly id = nextMmId++;
  readonly pageSize: number;
  readonly pageTable = new PageTable();
  /** Sorted by start; non-overlapping. */
  readonly vmas: Vma[] = [];
  /** cpuMask[c] = 1 when CPU c may hold TLB entries of this mm (sticky, like x86's lazy mask). */
  readonly cpuMask: Uint8Array;
  /** Operations that changed PTEs and have not flushed yet (inc/dec_tlb_flush_pending). */
  tlbFlushPending = 0;
  /** A stamp unique across all mms and time, taken by every change to the VMAs: equal stamps mean equal VMAs. */
  private layout = ++layoutStamps;
  private readonly notifiers: MmuNotifier[] = [];

  constructor(readonly machine: Machine) {
    this.pageSize = machine.config.pageSize;
    this.cpuMask = new Uint8Array(machine.cpus.length);
  }

  /** Copy page table, cpumask, flush-pending count and VMAs into `into` (reusing it) or a new object. */
  saveState(into?: MmState): MmState {
    const s = into ?? { pageTable: this.pageTable.saveState(), cpuMask: new Uint8Array(this.cpuMask.length), tlbFlushPending: 0, layout: -1, vmas: [], vmaFields: [] };
    if (into !== undefined) this.pageTable.saveState(s.pageTable);
    s.cpuMask.set(this.cpuMask);
    s.tlbFlushPending = this.tlbFlushPending;
    if (s.layout === this.layout) {
      // Flags change without a layout change (clear_refs, userfaultfd registration of a whole VMA).
      for (let i = 0; i < this.vmas.length; i++) s.vmaFields[4 * i + 3] = this.vmas[i]!.flags;
      return s;
    }
    s.layout = this.layout;
    s.vmas.length = 0;
    s.vmaFields.length = 0;
    for (const v of this.vmas) {
      s.vmas.push(v);
      s.vmaFields.push(v.start, v.end, v.pgoff, v.flags);
    }
    return s;
  }

  /** Return to a saved state (the mappings' i_mmap sets are restored by Mapping.restoreState). */
  restoreState(s: MmState): void {
    this.pageTable.restoreState(s.pageTable);
    this.cpuMask.set(s.cpuMask);
    this.tlbFlushPending = s.tlbFlushPending;
    if (s.layout === this.layout) {
      for (let i = 0; i < this.vmas.length; i++) this.vmas[i]!.flags = s.vmaFields[4 * i + 3]!;
      return;
    }
    this.layout = s.layout;
    this.vmas.length = 0;
    for (let i = 0; i < s.vmas.length; i++) {
      const v = s.vmas[i]!;
      const f = s.vmaFields;
      v.start = f[4 * i]!;
      v.end = f[4 * i + 1]!;
      v.pgoff = f[4 * i + 2]!;
      v.flags = f[4 * i + 3]!;
      this.vmas.push(v);
    }
  }

  /** mm_tlb_flush_nested: someone else also has a deferred flush pending. */
  tlbFlushNested(): boolean {
    return this.tlbFlushPending > 1;
  }

  subscribe(notifier: MmuNotifier): () => void {
    this.notifiers.push(notifier);
    return () => {
      const i = this.notifiers.indexOf(notifier);
      if (i >= 0) this.notifiers.splice(i, 1);
    };
  }

  notifyStart(start: number, end: number, event: NotifierEvent): NotifierRange {
    const range: NotifierRange = { mm: this, start, end, event };
    for (const n of this.notifiers) n.invalidateRangeStart?.(range);
    return range;
  }

  notifyEnd(range: NotifierRange): void {
    for (const n of this.notifiers) n.invalidateRangeEnd?.(range);
  }

  /** The VMA containing va, or null. */
  findVma(va: number): Vma | null {
    let lo = 0;
    let hi = this.vmas.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.vmas[mid]!;
      if (v.end <= va) lo = mid + 1;
      else hi = mid;
    }
    const v = this.vmas[lo];
    return v !== undefined && v.start <= va ? v : null;
  }

  /** Effective PTE for vpn, following huge leaves (pfn adjusted to the 4 KiB page); none outside the address space. */
  readPte(vpn: number): number {
    if (!(vpn >= 0 && vpn < MAX_VPN)) return PTE_NONE;
    const t = this.pageTable.pteTableOf(vpn);
    if (t !== null) return t[vpn & (PAGES_PER_PMD - 1)]!;
    const pmd = this.pageTable.pmdLeafOf(vpn);
    if (pmd !== PTE_NONE) return pmd + ((vpn & (PAGES_PER_PMD - 1)) << 8);
    const pud = this.pageTable.pudLeafOf(vpn);
    if (pud !== PTE_NONE) return pud + ((vpn & (PAGES_PER_PUD - 1)) << 8);
    return PTE_NONE;
  }

  /** Store flags for vpn; a huge leaf takes the flags for its whole extent. */
  writePte(vpn: number, pte: number): void {
    if (this.pageTable.pteTableOf(vpn) === null) {
      const pmd = this.pageTable.pmdLeafOf(vpn);
      if (pmd !== PTE_NONE) return this.pageTable.setPmdLeaf(vpn, (pmd & ~0xff) | (pte & 0xff));
      const pud = this.pageTable.pudLeafOf(vpn);
      if (pud !== PTE_NONE) return this.pageTable.setPudLeaf(vpn, (pud & ~0xff) | (pte & 0xff));
    }
    this.pageTable.set(vpn, pte);
  }

  /**
   * Map pages of `mapping`. Returns the new VMA; its `start` is the address.
   * Rejects, changing nothing: a size of zero, a pgoff range outside the
   * mapping, an unaligned or overlapping fixed address, no VA space left.
   */
  mmap(mapping: Mapping, opts: MmapOptions): Vma {
    const pgoff = opts.pgoff ?? 0;
    requireInteger('mmap pages', opts.pages, 1, MAX_VPN);
    requireInteger('mmap pgoff', pgoff, 0);
    if (pgoff + opts.pages > mapping.nrPages) {
      throw new InvalidArgumentError(`mmap of pgoffs [${pgoff}, ${pgoff + opts.pages}) exceeds ${mapping.name} (${mapping.nrPages} pages)`);
    }
    if (mapping.machine !== this.machine) throw new InvalidArgumentError('mapping belongs to another machine');
    const prot = opts.prot ?? 'rw';
    const shared = opts.shared ?? true;
    const mayWrite = opts.mayWrite ?? true;
    if (prot === 'rw' && shared && !mayWrite) throw new InvalidArgumentError('shared writable mmap of a file not opened for writing');
    const len = opts.pages * this.pageSize;
    let start: number;
    if (opts.address !== undefined) {
      start = opts.address;
      if (!Number.isInteger(start) || start < 0 || start % this.pageSize !== 0) {
        throw new InvalidArgumentError(`mmap address 0x${start.toString(16)} is not page aligned`);
      }
      if (start + len > MAX_VPN * this.pageSize) throw new InvalidArgumentError('mmap range beyond the address space');
      if (this.overlaps(start, start + len)) throw new InvalidArgumentError(`mmap range 0x${start.toString(16)}+${len} overlaps an existing mapping`);
    } else {
      start = this.allocateVa(len);
    }
    let flags = 0;
    if (prot !== 'none') flags |= VM_READ;
    if (prot === 'rw') flags |= VM_WRITE;
    if (shared) flags |= VM_SHARED;
    if (mayWrite) flags |= VM_MAYWRITE;
    if (opts.randRead) flags |= VM_RAND_READ;
    if (mapping.kind === 'device') flags |= VM_PFNMAP;
    // A new mapping is always soft-dirty (until clear_refs resets it).
    if (this.machine.config.softDirty) flags |= VM_SOFTDIRTY;
    const ops = opts.ops ?? mapping.ops;
    const refused = ops.mmap?.(flags, pgoff, opts.pages);
    if (refused) throw new InvalidArgumentError(`mmap refused by ${mapping.name}: ${refused}`);
    const vma = new Vma(this, mapping, start, start + len, pgoff, flags, ops);
    this.insertVma(vma);
    return this.mergeVmas(start, start + len) ?? vma;
  }

  /**
   * vma_merge: join the VMAs touching [start, end) with their neighbours where
   * Linux would — same mapping, contiguous pgoffs, same ops, flags equal but
   * for VM_SOFTDIRTY (which the joined VMA keeps if either had it: the
   * merge false positives of soft-dirty). PFN maps never merge (VM_PFNMAP
   * is one of the kernel's VM_SPECIAL flags), so device mappings keep their
   * VMAs. Returns the VMA that now contains `start`, when a merge happened.
   */
  mergeVmas(start: number, end: number): Vma | null {
    let merged: Vma | null = null;
    for (let i = 1; i < this.vmas.length; i++) {
      const prev = this.vmas[i - 1]!;
      const next = this.vmas[i]!;
      if (next.start > end || prev.end < start) continue;
      if (prev.end !== next.start || prev.mapping !== next.mapping || prev.ops !== next.ops || prev.pgoffEnd !== next.pgoff) continue;
      if ((prev.flags | next.flags) & VM_PFNMAP || (prev.flags ^ next.flags) & ~VM_SOFTDIRTY) continue;
      if (prev.mapping.iMmapReaders > 0) continue;
      if (!this.machine.config.mergeDropsSoftDirty) prev.flags |= next.flags & VM_SOFTDIRTY;
      prev.end = next.end;
      this.layout = ++layoutStamps;
      this.vmas.splice(i, 1);
      next.mapping.unlinkVma(next);
      prev.mapping.relinkVma(prev);
      if (prev.start <= start && start < prev.end) merged = prev;
      i--;
    }
    return merged;
  }

  /** Unmap [va, va + length): zap PTEs, flush TLBs, trim or split VMAs. Holes are allowed. */
  munmap(va: number, length: number): void {
    const end = this.checkAlignedRange(va, length);
    this.checkUnlocked(va, end);
    const victims = this.vmasIn(va, end);
    for (const vma of victims) {
      if (vma.mapping.iMmapReaders > 0) throw new WouldDeadlockError(`munmap of ${vma} needs the i_mmap lock a walker holds`);
    }
    for (const vma of victims) {
      const s = Math.max(va, vma.start);
      const e = Math.min(end, vma.end);
      vma.ops.beforeUnmap?.(vma, s, e);
      this.zapRange(s, e, 'unmap');
      this.carve(vma, s, e);
      this.layout = ++layoutStamps;
    }
    this.freePgtables(va, end);
  }

  /**
   * free_pgtables after an unmap of [va, end): a PTE table goes only when its
   * whole 2 MiB lies in the gap between the neighbouring VMAs (floor and
   * ceiling); a table that also maps part of a remaining VMA stays, empty
   * slots and all.
   */
  private freePgtables(va: number, end: number): void {
    const ps = this.pageSize;
    let floor = 0;
    let ceiling = MAX_VPN * ps;
    for (const v of this.vmas) {
      if (v.end <= va) floor = Math.max(floor, v.end);
      else if (v.start >= end) ceiling = Math.min(ceiling, v.start);
    }
    const pmd = PAGES_PER_PMD * ps;
    const lo = Math.max(Math.ceil(floor / pmd), Math.floor(va / pmd)) * PAGES_PER_PMD;
    const hi = Math.min(Math.floor(ceiling / pmd), Math.ceil(end / pmd)) * PAGES_PER_PMD;
    if (lo < hi) this.pageTable.freeEmptyTables(lo, hi);
  }

  /**
   * Change protection of [va, va + length), which must be fully mapped.
   * Removing write permission write-protects the PTEs and flushes; adding it
   * leaves PTEs read-only (the next write faults, through mkwrite for shared VMAs).
   */
  mprotect(va: number, length: number, prot: Protection): void {
    const end = this.checkAlignedRange(va, length);
    const parts = this.vmasIn(va, end);
    let covered = va;
    for (const v of parts) {
      if (v.start > covered) break;
      covered = v.end;
    }
    if (covered < end) throw new OutOfMemoryError(`mprotect range 0x${va.toString(16)}+${length} is not fully mapped`);
    const add = (prot === 'none' ? 0 : VM_READ) | (prot === 'rw' ? VM_WRITE : 0);
    const changing = parts.filter((v) => (v.flags & (VM_READ | VM_WRITE)) !== add);
    for (const v of changing) {
      // Splitting relinks the VMA in i_mmap, which needs the lock a helper walk holds.
      if (v.mapping.iMmapReaders > 0) throw new WouldDeadlockError(`mprotect of ${v} needs the i_mmap lock a walker holds`);
    }
    for (const v of changing) {
      if (add & VM_WRITE && !(v.flags & VM_MAYWRITE)) throw new InvalidArgumentError(`${v} may not become writable (EACCES)`);
      const s = Math.max(va, v.start);
      const e = Math.min(end, v.end);
      const veto = v.ops.mprotect?.(v, s, e, (v.flags & ~(VM_READ | VM_WRITE)) | add);
      if (veto) throw new InvalidArgumentError(`mprotect refused by ${v}: ${veto}`);
    }
    this.checkUnlocked(va, end);
    for (const v0 of changing) {
      let v = v0;
      if (v.start < va) v = this.split(v, va);
      if (v.end > end) this.split(v, end);
      const removesWrite = v.flags & VM_WRITE && !(add & VM_WRITE);
      v.flags = (v.flags & ~(VM_READ | VM_WRITE)) | add;
      this.layout = ++layoutStamps;
      if (removesWrite) this.writeProtectRange(v.start, v.end);
    }
    this.mergeVmas(va, end);
  }

  /**
   * Install a huge PMD leaf (as a huge fault would) mapping 512 pages from pfn.
   * For tests of how helpers treat huge entries; va must be PMD aligned and
   * inside one VMA.
   */
  installHugePmd(va: number, pfn: number, writable: boolean, dirty = false): void {
    const vpn = va / this.pageSize;
    if (!Number.isInteger(vpn) || vpn % PAGES_PER_PMD !== 0) throw new InvalidArgumentError('huge PMD address must be PMD aligned');
    const vma = this.findVma(va);
    if (vma === null || vma.end < va + PAGES_PER_PMD * this.pageSize) throw new InvalidArgumentError('huge PMD must lie inside one VMA');
    this.pageTable.setPmdLeaf(vpn, mkPte(pfn, PTE_PRESENT | PTE_SPECIAL | PTE_HUGE | (writable ? PTE_WRITE : 0) | (dirty ? PTE_DIRTY : 0)));
  }

  /**
   * Zap PTEs of [start, end) in this mm: bracketed by notifiers, then a TLB
   * flush. With keepUffdWp (MADV_DONTNEED, hole punch; not munmap), a
   * uffd-wp protected entry of a VMA registered for it is replaced by a
   * marker, so the page stays protected while unmapped.
   */
  zapRange(start: number, end: number, event: NotifierEvent, keepUffdWp = false): void {
    this.checkUnlocked(start, end);
    const range = this.notifyStart(start, end, event);
    this.machine.flushCacheRange(this, start, end);
    const sv = start / this.pageSize;
    const ev = end / this.pageSize;
    const phys = this.machine.phys;
    const pt = this.pageTable;
    pt.forEachPteTable(sv, ev, (table, from, to, base) => {
      for (let i = from; i < to; i++) {
        const pte = table[i]!;
        if (pte === PTE_NONE) continue;
        if ((pte & (PTE_PRESENT | PTE_SPECIAL)) === PTE_PRESENT) phys.freeFrame(ptePfn(pte));
        const keep = keepUffdWp && pte & PTE_UFFD_WP && (this.findVma((base + i) * this.pageSize)?.flags ?? 0) & VM_UFFD_WP;
        pt.set(base + i, keep ? PTE_UFFD_MARKER : PTE_NONE);
      }
    });
    for (let v = sv - (sv % PAGES_PER_PMD); v < ev; v += PAGES_PER_PMD) {
      if (pt.pmdLeafOf(v) !== PTE_NONE) pt.setPmdLeaf(v, PTE_NONE);
    }
    this.machine.flushTlbRange(this, start, end);
    this.notifyEnd(range);
  }

  /** change_protection: clear write in [start, end), then one flush. */
  private writeProtectRange(start: number, end: number): void {
    const range = this.notifyStart(start, end, 'protection-vma');
    const sv = start / this.pageSize;
    const ev = end / this.pageSize;
    this.pageTable.forEachPteTable(sv, ev, (table, from, to) => {
      for (let i = from; i < to; i++) table[i]! &= ~PTE_WRITE;
    });
    this.machine.flushTlbRange(this, start, end);
    this.notifyEnd(range);
  }

  private checkAlignedRange(va: number, length: number): number {
    if (!Number.isInteger(va) || va < 0 || va % this.pageSize !== 0) {
      throw new InvalidArgumentError(`address 0x${va.toString(16)} is not page aligned`);
    }
    if (!Number.isInteger(length) || length <= 0) throw new InvalidArgumentError(`length must be a positive integer, got ${length}`);
    const end = va + Math.ceil(length / this.pageSize) * this.pageSize;
    if (end > MAX_VPN * this.pageSize) throw new InvalidArgumentError('range beyond the address space');
    return end;
  }

  private checkUnlocked(start: number, end: number): void {
    for (let v = start / this.pageSize; v < end / this.pageSize; v += PAGES_PER_PMD - (v % PAGES_PER_PMD)) {
      if (this.pageTable.isLocked(v)) throw new WouldDeadlockError(`page-table lock for 0x${(v * this.pageSize).toString(16)} is held`);
    }
  }

  private vmasIn(start: number, end: number): Vma[] {
    return this.vmas.filter((v) => v.start < end && v.end > start);
  }

  private overlaps(start: number, end: number): boolean {
    return this.vmas.some((v) => v.start < end && v.end > start);
  }

  /** First-fit VA allocation, PMD aligned so that each mapping starts a fresh page-table page. */
  private allocateVa(len: number): number {
    const align = PAGES_PER_PMD * this.pageSize;
    let cand = align;
    for (const v of this.vmas) {
      if (cand + len <= v.start) break;
      cand = Math.max(cand, Math.ceil(v.end / align) * align);
    }
    if (cand + len > MAX_VPN * this.pageSize) throw new OutOfMemoryError('virtual address space exhausted');
    return cand;
  }

  private insertVma(vma: Vma): void {
    this.layout = ++layoutStamps;
    let i = 0;
    while (i < this.vmas.length && this.vmas[i]!.start < vma.start) i++;
    this.vmas.splice(i, 0, vma);
    vma.mapping.linkVma(vma);
  }

  /**
   * Split vma at `at` (page aligned, strictly inside it); returns the upper
   * part, a new VMA with the same flags. For code that changes the flags of
   * part of a VMA (userfaultfd registration); the caller checks the i_mmap lock.
   */
  split(vma: Vma, at: number): Vma {
    const tail = new Vma(this, vma.mapping, at, vma.end, vma.pgoffAt(at), vma.flags, vma.ops);
    vma.end = at;
    vma.mapping.relinkVma(vma);
    this.insertVma(tail);
    return tail;
  }

  /** Remove [s, e) from vma (already zapped). */
  private carve(vma: Vma, s: number, e: number): void {
    if (s > vma.start && e < vma.end) {
      this.split(vma, e);
      vma.end = s;
      vma.mapping.relinkVma(vma);
    } else if (s > vma.start) {
      vma.end = s;
      vma.mapping.relinkVma(vma);
    } else if (e < vma.end) {
      vma.pgoff = vma.pgoffAt(e);
      vma.start = e;
      vma.mapping.relinkVma(vma);
    } else {
      this.vmas.splice(this.vmas.indexOf(vma), 1);
      vma.mapping.unlinkVma(vma);
    }
  }
}
