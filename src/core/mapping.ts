import { InvalidArgumentError, requireInteger } from './errors.js';
import type { VmOperations } from './fault.js';
import type { Machine } from './machine.js';
import type { Vma } from './vma.js';

let layoutStamps = 0;

/**
 * An address_space: a page-offset space (like a device file) whose pages map
 * to physical frames, plus its i_mmap set — the VMAs of any process that map
 * part of it.
 *
 * i_mmap is kept sorted by (first pgoff, creation order) with a running
 * maximum of last pgoffs, so "which VMAs map [a, b)" is a binary search plus a
 * scan of the candidates, never a scan of every VMA of the machine. Walks visit
 * VMAs in this order (the kernel's interval-tree order; ties by creation).
 */
/** 'device': a driver's PFN-mapped object (TTM BO); 'shmem': a memfd-like file whose pages are page cache. */
export type MappingKind = 'device' | 'shmem';

export class Mapping {
  /** Set at creation (Machine.createMapping); decides the VMA flags mmap gives. */
  kind: MappingKind = 'device';
  /** pgoff → pfn, -1 when the page has no frame. */
  readonly pfns: Int32Array;
  /**
   * Holders of the i_mmap lock in read mode (the dirty helpers). While
   * non-zero, VMAs of this mapping may not be unlinked (munmap would block).
   */
  iMmapReaders = 0;
  private vmas: Vma[] = [];
  /** maxEnd[i] = max pgoffEnd over vmas[0..i]. */
  private maxEnd: number[] = [];
  /** A stamp unique across all mappings and time, taken by every change to i_mmap: equal stamps mean equal sets. */
  private layout = ++layoutStamps;

  constructor(
    readonly machine: Machine,
    readonly nrPages: number,
    readonly ops: VmOperations,
    readonly name = 'mapping',
  ) {
    requireInteger('mapping size in pages', nrPages, 1);
    this.pfns = new Int32Array(nrPages).fill(-1);
  }

  /** Copy frames, the i_mmap set and its lock count into `into` (reusing it) or a new object. */
  saveState(into?: MappingState): MappingState {
    const s = into ?? { pfns: new Int32Array(this.nrPages), layout: -1, vmas: [], maxEnd: [], iMmapReaders: 0 };
    s.pfns.set(this.pfns);
    s.iMmapReaders = this.iMmapReaders;
    if (s.layout === this.layout) return s;
    s.layout = this.layout;
    s.vmas.length = 0;
    s.vmas.push(...this.vmas);
    s.maxEnd.length = 0;
    s.maxEnd.push(...this.maxEnd);
    return s;
  }

  restoreState(s: MappingState): void {
    this.pfns.set(s.pfns);
    this.iMmapReaders = s.iMmapReaders;
    if (s.layout === this.layout) return;
    this.layout = s.layout;
    this.vmas.length = 0;
    this.vmas.push(...s.vmas);
    this.maxEnd.length = 0;
    this.maxEnd.push(...s.maxEnd);
  }

  /** Back pgoffs [first, first + n) with freshly allocated zeroed frames. */
  populate(first = 0, n = this.nrPages - first): void {
    this.checkRange(first, n);
    for (let p = first; p < first + n; p++) {
      if (this.pfns[p] === -1) this.pfns[p] = this.machine.phys.allocFrame();
    }
  }

  /** Release the frames of pgoffs [first, first + n). Caller must have zapped the PTEs. */
  release(first = 0, n = this.nrPages - first): void {
    this.checkRange(first, n);
    for (let p = first; p < first + n; p++) {
      const pfn = this.pfns[p]!;
      if (pfn !== -1) {
        this.machine.phys.freeFrame(pfn);
        this.pfns[p] = -1;
      }
    }
  }

  pfnAt(pgoff: number): number {
    return pgoff >= 0 && pgoff < this.nrPages ? this.pfns[pgoff]! : -1;
  }

  /** The bytes of one page (no copy), or null without a frame. */
  page(pgoff: number): Uint8Array | null {
    const pfn = this.pfnAt(pgoff);
    return pfn < 0 ? null : this.machine.phys.frame(pfn);
  }

  /**
   * The bytes of pages [pgoff, pgoff + k) as one view (no copy), for the largest k ≤ maxPages
   * whose frames are consecutive in physical memory; null when pgoff has no frame. Bulk copies
   * go run by run: a BO populated at once is usually one run, and one copy per run instead of
   * one per page is what makes writeback's read of guest memory run at memory speed.
   */
  frameRun(pgoff: number, maxPages: number): Uint8Array | null {
    const first = this.pfnAt(pgoff);
    if (first < 0) return null;
    const end = Math.min(this.nrPages, pgoff + Math.max(1, maxPages));
    let k = 1;
    while (pgoff + k < end && this.pfns[pgoff + k] === first + k) k++;
    const ps = this.machine.pageSize;
    return this.machine.phys.bytes.subarray(first * ps, (first + k) * ps);
  }

  /** Number of VMAs mapping any part of this mapping. */
  get mapCount(): number {
    return this.vmas.length;
  }

  /** All VMAs in walk order. */
  allVmas(): readonly Vma[] {
    return this.vmas;
  }

  /** VMAs whose pgoff span intersects [first, first + nr), in walk order. */
  vmasIntersecting(first: number, nr: number): Vma[] {
    const last = first + nr;
    const out: Vma[] = [];
    // Candidates start below `last`; the running max lets us skip the prefix
    // whose VMAs all end at or before `first`.
    const hi = this.upperBound(last);
    let lo = 0;
    let h = hi;
    while (lo < h) {
      const mid = (lo + h) >>> 1;
      if (this.maxEnd[mid]! > first) h = mid;
      else lo = mid + 1;
    }
    for (let i = lo; i < hi; i++) {
      const v = this.vmas[i]!;
      if (v.pgoffEnd > first) out.push(v);
    }
    return out;
  }

  /** @internal called by Mm when a VMA is created or changes its span. */
  linkVma(vma: Vma): void {
    const i = this.upperBound(vma.pgoff, vma.id);
    this.vmas.splice(i, 0, vma);
    this.rebuild();
  }

  /** @internal */
  unlinkVma(vma: Vma): void {
    const i = this.vmas.indexOf(vma);
    if (i >= 0) {
      this.vmas.splice(i, 1);
      this.rebuild();
    }
  }

  /** @internal re-sort after a VMA's pgoff span changed (split, trim). */
  relinkVma(vma: Vma): void {
    this.unlinkVma(vma);
    this.linkVma(vma);
  }

  /** Index of the first VMA ordered at or after (key, id) in (pgoff, id) order. */
  private upperBound(key: number, id = -Infinity): number {
    let lo = 0;
    let hi = this.vmas.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.vmas[mid]!;
      if (v.pgoff < key || (v.pgoff === key && v.id < id)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private rebuild(): void {
    this.layout = ++layoutStamps;
    this.maxEnd.length = this.vmas.length;
    let m = -Infinity;
    for (let i = 0; i < this.vmas.length; i++) {
      m = Math.max(m, this.vmas[i]!.pgoffEnd);
      this.maxEnd[i] = m;
    }
  }

  private checkRange(first: number, n: number): void {
    if (!Number.isInteger(first) || !Number.isInteger(n) || first < 0 || n < 0 || first + n > this.nrPages) {
      throw new InvalidArgumentError(`pgoff range [${first}, ${first + n}) is outside ${this.name} of ${this.nrPages} pages`);
    }
  }
}

/** A copy of a Mapping's state (saveState / restoreState). */
export interface MappingState {
  pfns: Int32Array;
  /** The i_mmap layout stamp copied (-1: none yet). */
  layout: number;
  vmas: Vma[];
  maxEnd: number[];
  iMmapReaders: number;
}
