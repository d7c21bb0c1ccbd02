import {
  type Bitmap, type DirtyRange, type MmWalk, PTE_DIRTY, type WalkOps,
  cleanRecordSharedMappingRange, walkPageMapping, wpSharedMappingRange,
} from '../core/index.js';
import type { Bo } from './bo.js';
import { DEFAULT_DIRTY_CONFIG, type DirtyConfig } from './config.js';
import type { Resource } from './resource.js';
import type { DirtyTracker, ScanReport } from './strategies/contract.js';
import { forEachBoMapping } from './strategies/mappings.js';
import { DirtyRecord } from './strategies/record.js';

export type DirtyMethod = 'pagetable' | 'mkwrite';

/** What one scan of the vmwgfx tracker did, for tests and statistics. */
export interface ScanResult extends ScanReport {
  method: DirtyMethod;
  /** PTEs cleaned (PAGETABLE) or write-protected (MKWRITE) by the scan itself. */
  found: number;
  /** Set when this scan switched method. */
  switchedTo: DirtyMethod | null;
  changeCount: number;
}

/**
 * The vmwgfx tracker (struct vmw_bo_dirty) on the
 * DirtyTracker contract: the strategies `adaptive`, `pagetable` and `mkwrite`
 * (the last two pin the method through the config). Its record is the
 * DirtyRecord it extends.
 *
 * PAGETABLE: PTEs are writable; the hardware D bits are the record and a scan
 * cleans them into the bitmap. MKWRITE: PTEs are installed read-only; the
 * first write to a page faults into mkwrite, which sets the bit *before* the
 * PTE becomes writable; a scan write-protects [start, end) again.
 *
 * Every entry point that walks the BO's mappings (add, scan, beforeUnmap,
 * unmap) holds the BO's reservation throughout, and the fault handlers take
 * it (vm-ops.ts): a method switch changes what a fault must do with a page,
 * so no fault may run half-way through one.
 */
export class BoDirtyTracker extends DirtyRecord implements DirtyTracker {
  method: DirtyMethod;
  /** Consecutive scans that voted to switch method. */
  changeCount = 0;
  /** Coherent users (kref). */
  refCount = 1;
  /** Method switches so far. */
  switches = 0;

  private constructor(readonly bo: Bo, readonly config: DirtyConfig) {
    super(bo.pages, config.transferClampsWithMax);
    this.method = bo.pages < config.mkwriteThresholdPages ? 'pagetable' : 'mkwrite';
  }

  /**
   * vmw_bo_dirty_add: take a reference, creating the tracker on first use.
   * Large BOs start in MKWRITE: write-protect, then pick up what was dirtied
   * before the protection took effect.
   */
  static add(bo: Bo, config: DirtyConfig = DEFAULT_DIRTY_CONFIG): BoDirtyTracker {
    if (bo.tracker !== null) {
      if (!(bo.tracker instanceof BoDirtyTracker)) throw new TypeError(`BO ${bo.id} already has a tracker of another strategy (${bo.tracker.method})`);
      bo.tracker.refCount++;
      return bo.tracker;
    }
    const t = BoDirtyTracker.create(bo, config);
    bo.tracker = t;
    return t;
  }

  /** A new tracker for bo, write-protected when it starts in MKWRITE; the caller attaches it. */
  static create(bo: Bo, config: DirtyConfig): BoDirtyTracker {
    const t = new BoDirtyTracker(bo, config);
    if (t.method === 'mkwrite') {
      bo.reservation.hold('dirty-add', () => {
        wpSharedMappingRange(bo.mapping, bo.offset, bo.pages);
        t.cleanRecord(0, bo.pages, t);
      });
    }
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

  /** The fault handler maps read-only under MKWRITE, so the first write reaches mkwrite. */
  mapWritable(): boolean {
    return this.method !== 'mkwrite';
  }

  /** vmw_bo_vm_mkwrite: record BO page i before its PTE becomes writable. */
  mkwrite(page: number): void {
    this.recordWrite(page);
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

  /** mkwrite handler: record BO page i before its PTE becomes writable (MKWRITE only). */
  recordWrite(page: number): void {
    if (this.method === 'mkwrite') this.set(page);
  }

  /**
   * vmw_bo_dirty_pre_unmap: unmapping destroys hardware D bits, so PAGETABLE
   * harvests [from, to) first; MKWRITE already has them in the bitmap.
   */
  beforeUnmap(from: number, to: number): void {
    this.bo.reservation.hold('pre-unmap', () => this.harvest(from, to));
  }

  /** The old name of beforeUnmap. */
  preUnmap(from: number, to: number): void {
    this.beforeUnmap(from, to);
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
   * The record, and under PAGETABLE the D bits of every PTE mapping the BO
   * (only a scan moves them into the bitmap). Under MKWRITE the D bits are
   * stale (a write-protect scan leaves them): the bitmap is the record.
   */
  override peekDirty(out: Bitmap): void {
    super.peekDirty(out);
    if (this.method === 'pagetable') walkPageMapping(this.bo.mapping, this.bo.offset, this.bo.pages, dirtyBitOps, { offset: this.bo.offset, out });
  }

  /**
   * vmw_bo_dirty_transfer_to_res: move the set bits of the resource's page
   * span into the resource (transferToResource).
   */
  transferToResource(res: Resource): number {
    return transferToResource(this, res, this.bo.space.pageSize);
  }

  /** vmw_bo_dirty_clear_res: a full upload made the resource's bits redundant. */
  clearResource(res: Resource): void {
    this.clearDirty(...res.pageSpan());
  }

  private cleanRecord(from: number, nr: number, range: DirtyRange): number {
    return cleanRecordSharedMappingRange(this.bo.mapping, this.bo.offset + from, nr, this.bo.offset, this.bitmap, range);
  }
}

interface DirtyBitWalk {
  offset: number;
  out: Bitmap;
}

/** A read-only walk: PTEs with D set, no PTE changed, no flush, no notifier. */
const dirtyBitOps: WalkOps<DirtyBitWalk> = {
  pteMask: PTE_DIRTY,
  pteEntry(_table: Int32Array, _index: number, vpn: number, walk: MmWalk<DirtyBitWalk>): number {
    const vma = walk.vma;
    walk.private.out.set(vma.pgoff + vpn - vma.start / vma.mm.pageSize - walk.private.offset);
    return 0;
  },
};

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

/**
 * Resource transfer (vmw_bo_dirty_transfer_to_res): the tracker hands over
 * the dirty pages of the resource's page span, which become dirty byte
 * ranges of the resource. Pages outside the span (a buggy tracker's, see
 * DirtyConfig.transferClampsWithMax) are clipped by the resource and lost.
 */
export function transferToResource(tracker: DirtyTracker, res: Resource, ps = res.bo.space.pageSize): number {
  const [rs, re] = res.pageSpan();
  return tracker.takeDirty(rs, re, (s, e) => res.dirtyRangeAdd(s * ps, e * ps));
}

/**
 * Zap the PTEs of BO pages [from, to) in every process that maps them
 * (unmap_mapping_range): uffd-wp markers stay, as the kernel keeps them for
 * file pages, so a protected page stays protected when it faults back in.
 */
export function zapBoPages(bo: Bo, from: number, to: number): void {
  forEachBoMapping(bo, from, to, (vma, s, e) => vma.mm.zapRange(s, e, 'clear', true));
}
