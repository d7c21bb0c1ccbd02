import {
  Bitmap, type DirtyRange, cleanRecordSharedMappingRange, wpSharedMappingRange,
} from '../core/index.js';
import type { Bo } from './bo.js';
import { DEFAULT_DIRTY_CONFIG, type DirtyConfig } from './config.js';
import type { Resource } from './resource.js';

export type DirtyMethod = 'pagetable' | 'mkwrite';

/** What one scan did, for tests and statistics. */
export interface ScanResult {
  method: DirtyMethod;
  /** PTEs cleaned (PAGETABLE) or write-protected (MKWRITE) by the scan itself. */
  found: number;
  /** Set when this scan switched method. */
  switchedTo: DirtyMethod | null;
  changeCount: number;
}

/**
 * Per-BO dirty tracking (struct vmw_bo_dirty).
 * Bit i set ⇔ BO page i has data the device does not have yet; [start, end)
 * over-approximates the set bits, empty when `start >= end`.
 *
 * PAGETABLE: PTEs are writable; the hardware D bits are the record and a scan
 * cleans them into the bitmap. MKWRITE: PTEs are installed read-only; the
 * first write to a page faults into mkwrite, which sets the bit *before* the
 * PTE becomes writable; a scan write-protects [start, end) again.
 *
 * Every entry point that walks the BO's mappings (add, scan, preUnmap, unmap)
 * holds the BO's reservation throughout, and the fault handlers take it
 * (vm-ops.ts): a method switch changes what a fault must do with a page, so
 * no fault may run half-way through one.
 */
export class BoDirtyTracker {
  readonly bitmap: Bitmap;
  start: number;
  end: number;
  method: DirtyMethod;
  /** Consecutive scans that voted to switch method. */
  changeCount = 0;
  /** Coherent users (kref). */
  refCount = 1;
  /** Method switches so far. */
  switches = 0;

  private constructor(readonly bo: Bo, readonly config: DirtyConfig) {
    this.bitmap = new Bitmap(bo.pages);
    this.start = bo.pages;
    this.end = 0;
    this.method = bo.pages < config.mkwriteThresholdPages ? 'pagetable' : 'mkwrite';
  }

  /**
   * vmw_bo_dirty_add: take a reference, creating the tracker on first use.
   * Large BOs start in MKWRITE: write-protect, then pick up what was dirtied
   * before the protection took effect.
   */
  static add(bo: Bo, config: DirtyConfig = DEFAULT_DIRTY_CONFIG): BoDirtyTracker {
    if (bo.tracker !== null) {
      bo.tracker.refCount++;
      return bo.tracker;
    }
    const t = new BoDirtyTracker(bo, config);
    bo.reservation.hold('dirty-add', () => {
      bo.tracker = t;
      if (t.method === 'mkwrite') {
        wpSharedMappingRange(bo.mapping, bo.offset, bo.pages);
        t.cleanRecord(0, bo.pages, t);
      }
    });
    return t;
  }

  /** Copy the tracker's state into `into` (reusing it) or a new object. */
  saveState(into?: TrackerState): TrackerState {
    const s = into ?? { words: new Uint32Array(this.bitmap.words.length), start: 0, end: 0, method: 'pagetable', changeCount: 0, refCount: 0, switches: 0 };
    s.words.set(this.bitmap.words);
    s.start = this.start;
    s.end = this.end;
    s.method = this.method;
    s.changeCount = this.changeCount;
    s.refCount = this.refCount;
    s.switches = this.switches;
    return s;
  }

  restoreState(s: TrackerState): void {
    this.bitmap.words.set(s.words);
    this.start = s.start;
    this.end = s.end;
    this.method = s.method;
    this.changeCount = s.changeCount;
    this.refCount = s.refCount;
    this.switches = s.switches;
  }

  /** vmw_bo_dirty_release: drop a reference; the tracker goes away at zero. */
  release(): void {
    if (--this.refCount === 0) this.bo.tracker = null;
  }

  get empty(): boolean {
    return this.end <= this.start;
  }

  /** vmw_bo_dirty_scan: harvest dirty pages into the bitmap and vote on the method. */
  scan(): ScanResult {
    return this.bo.reservation.hold('scan', () => (this.method === 'pagetable' ? this.scanPagetable() : this.scanMkwrite()));
  }

  private scanPagetable(): ScanResult {
    const found = this.cleanRecord(0, this.bo.pages, this);
    this.changeCount = found === 0 ? this.changeCount + 1 : 0;
    let switchedTo: DirtyMethod | null = null;
    if (this.changeCount > this.config.changeTriggers) {
      this.changeCount = 0;
      this.method = 'mkwrite';
      wpSharedMappingRange(this.bo.mapping, this.bo.offset, this.bo.pages);
      // Writes between the clean above and the write-protect left D bits behind.
      this.cleanRecord(0, this.bo.pages, this);
      switchedTo = 'mkwrite';
      this.switches++;
    }
    return { method: 'pagetable', found, switchedTo, changeCount: this.changeCount };
  }

  private scanMkwrite(): ScanResult {
    // Nothing recorded since the last transfer: change_count is left alone.
    if (this.empty) return { method: 'mkwrite', found: 0, switchedTo: null, changeCount: this.changeCount };
    const found = wpSharedMappingRange(this.bo.mapping, this.bo.offset + this.start, this.end - this.start);
    const percent = Math.floor((100 * found) / this.bo.pages);
    this.changeCount = percent > this.config.switchPercentage ? this.changeCount + 1 : 0;
    let switchedTo: DirtyMethod | null = null;
    if (this.changeCount > this.config.changeTriggers) {
      this.method = 'pagetable';
      // Clean every D bit (temporary whole-BO bounds), then keep the contiguous
      // over-approximation [start, end) as the record: in MKWRITE every write
      // since the last write-protect went through mkwrite and set a bit inside it.
      this.cleanRecord(0, this.bo.pages, { start: 0, end: this.bo.pages });
      this.bitmap.clearAll();
      this.bitmap.setRange(this.start, this.end);
      this.changeCount = 0;
      switchedTo = 'pagetable';
      this.switches++;
    }
    return { method: 'mkwrite', found, switchedTo, changeCount: this.changeCount };
  }

  /** mkwrite handler: record BO page i before its PTE becomes writable. */
  recordWrite(page: number): void {
    if (this.method !== 'mkwrite' || this.bitmap.test(page)) return;
    this.bitmap.set(page);
    if (page < this.start) this.start = page;
    if (page + 1 > this.end) this.end = page + 1;
  }

  /** Mark [from, to) dirty (resync after a device reset, full uploads). */
  markDirty(from: number, to: number): void {
    if (from >= to) return;
    this.bitmap.setRange(from, to);
    this.start = Math.min(this.start, from);
    this.end = Math.max(this.end, to);
  }

  /**
   * vmw_bo_dirty_pre_unmap: unmapping destroys hardware D bits, so PAGETABLE
   * harvests [from, to) first; MKWRITE already has them in the bitmap.
   */
  preUnmap(from: number, to: number): void {
    this.bo.reservation.hold('pre-unmap', () => this.harvest(from, to));
  }

  /** vmw_bo_dirty_unmap: harvest, then zap every CPU mapping of BO pages [from, to). */
  unmap(from: number, to: number): void {
    this.bo.reservation.hold('unmap', () => {
      this.harvest(from, to);
      zapBoPages(this.bo, from, to);
    });
  }

  private harvest(from: number, to: number): void {
    if (this.method !== 'pagetable' || from >= to) return;
    wpSharedMappingRange(this.bo.mapping, this.bo.offset + from, to - from);
    this.cleanRecord(from, to - from, this);
  }

  /**
   * vmw_bo_dirty_transfer_to_res: move the set bits of the resource's page span
   * into the resource, clearing them. The limit is min(resource end, dirty end):
   * the shipped max() (bug C1 in docs/fidelity.md, config.transferClampsWithMax) walks past the
   * resource and steals a neighbour's bits.
   */
  transferToResource(res: Resource): number {
    const [rs, re] = res.pageSpan();
    if (rs >= this.end || re <= this.start) return 0;
    let cur = Math.max(rs, this.start);
    const lim = this.config.transferClampsWithMax ? Math.max(re, this.end) : Math.min(re, this.end);
    let moved = 0;
    while (cur < lim) {
      const s = this.bitmap.findNextSet(cur, lim);
      if (s >= lim) break;
      const e = this.bitmap.findNextClear(s + 1, lim);
      this.bitmap.clearRange(s, e);
      res.dirtyRangeAdd(s * this.bo.space.pageSize, e * this.bo.space.pageSize);
      moved += e - s;
      cur = e + 1;
    }
    this.shrink(rs, lim);
    return moved;
  }

  /** vmw_bo_dirty_clear_res: a full upload made the resource's bits redundant. */
  clearResource(res: Resource): void {
    const [rs, re] = res.pageSpan();
    if (rs >= this.end || re <= this.start) return;
    const s = Math.max(rs, this.start);
    const e = Math.min(re, this.end);
    this.bitmap.clearRange(s, e);
    this.shrink(rs, e);
  }

  /** Shrink [start, end) after clearing [rs, lim) when an edge falls inside it. */
  private shrink(rs: number, lim: number): void {
    if (rs <= this.start && this.start < lim) this.start = lim;
    if (rs < this.end && this.end <= lim) this.end = rs;
  }

  private cleanRecord(from: number, nr: number, range: DirtyRange): number {
    return cleanRecordSharedMappingRange(this.bo.mapping, this.bo.offset + from, nr, this.bo.offset, this.bitmap, range);
  }
}

/** A copy of a tracker's state (saveState / restoreState). */
export interface TrackerState {
  words: Uint32Array;
  start: number;
  end: number;
  method: DirtyMethod;
  changeCount: number;
  refCount: number;
  switches: number;
}

/** Zap the PTEs of BO pages [from, to) in every process that maps them. */
export function zapBoPages(bo: Bo, from: number, to: number): void {
  const first = bo.offset + from;
  for (const vma of bo.mapping.vmasIntersecting(first, to - from)) {
    const s = vma.addressOf(Math.max(first, vma.pgoff));
    const e = vma.addressOf(Math.min(bo.offset + to, vma.pgoffEnd));
    vma.mm.zapRange(s, e, 'clear');
  }
}
