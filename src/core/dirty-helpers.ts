import type { Bitmap } from './bitmap.js';
import { InvalidArgumentError } from './errors.js';
import type { Mapping } from './mapping.js';
import type { NotifierRange } from './notifier.js';
import { type MmWalk, WALK_SKIP, type WalkOps, walkPageMapping } from './pagewalk.js';
import { PTE_DIRTY, PTE_WRITE } from './pte.js';
import { type HelperOrder, PteChange, type WalkLocals, modifyPte } from './pte-modify.js';
import { KERNEL_ACTOR, Step } from './step.js';
import { VM_HUGETLB, VM_MAYWRITE, VM_SHARED, type Vma } from './vma.js';

/**
 * The two helpers of mm/mapping_dirty_helpers.c: write-protect, and
 * clean-and-record, every PTE that maps a pgoff range of an address space in
 * any shared writable VMA of any process.
 *
 * Default (kernel) order: each PTE is changed with modify_prot_start/commit
 * under its table's lock (pte-modify.ts), and ONE TLB flush per VMA covers
 * the window of changed PTEs after all of them (post_vma). Between a change
 * and that flush a CPU may still write through a stale writable+dirty TLB
 * entry; the clean helper has recorded the page by then, which is why
 * guarantees (a) and (b) hold as long as the recorded pages are consumed only
 * after the call returns. The strict orders (pte-modify.ts) flush per PTE.
 */

export { HELPER_ORDERS, type HelperOrder, type WalkLocals } from './pte-modify.js';

export interface HelperOptions {
  /** Per-PTE order (default 'deferred', the kernel's). */
  order?: HelperOrder;
  /** CPU the helper runs on (its flushes are local, not IPIs); default none. */
  initiator?: number;
  /** Accumulates what the walk did. */
  stats?: HelperStats;
}

export interface HelperStats {
  vmasWalked: number;
  /** VMAs that test_walk rejected (not shared+maywrite, or hugetlb). */
  vmasSkipped: number;
  hugeSkipped: number;
  /** Huge entries that were writable or dirty (the kernel WARNs). */
  hugeWarnings: number;
  /** TLB flushes the helper issued (per VMA, or per PTE in the strict orders). */
  tlbFlushes: number;
}

export function newHelperStats(): HelperStats {
  return { vmasWalked: 0, vmasSkipped: 0, hugeSkipped: 0, hugeWarnings: 0, tlbFlushes: 0 };
}

/** In/out bound of the set bits, in bitmap-index units; empty when `start >= end`. */
export interface DirtyRange {
  start: number;
  end: number;
}

/**
 * State shared by both walks (struct wp_walk). Classes, not object spreads,
 * so the per-PTE code sees two stable, related hidden classes.
 */
class WpWalk implements WalkLocals {
  total = 0;
  vmaIndex = 0;
  range: NotifierRange | null = null;
  readonly pte: PteChange;
  readonly stats: HelperStats | null;

  constructor(opts: HelperOptions, mapping: Mapping) {
    this.pte = new PteChange(mapping.machine, opts.order ?? 'deferred', opts.initiator ?? -1);
    this.stats = opts.stats ?? null;
  }
}

/** struct clean_walk. */
class CleanWalk extends WpWalk {
  /** bit index = vpn + bitDelta for the current VMA. */
  bitDelta = 0;

  constructor(opts: HelperOptions, mapping: Mapping, readonly bitmap: Bitmap, readonly bitmapPgoff: number, public start: number, public end: number) {
    super(opts, mapping);
  }
}

/** No dirty tracking on COW, read-only or hugetlb VMAs. */
function testWalk(vma: Vma, walk: MmWalk<WpWalk>): number {
  if ((vma.flags & (VM_SHARED | VM_MAYWRITE)) === (VM_SHARED | VM_MAYWRITE) && !(vma.flags & VM_HUGETLB)) {
    if (walk.private.stats) walk.private.stats.vmasWalked++;
    return 0;
  }
  if (walk.private.stats) walk.private.stats.vmasSkipped++;
  return WALK_SKIP;
}

function preVma(start: number, end: number, walk: MmWalk<WpWalk>): number {
  const w = walk.private;
  const ps = walk.mm.pageSize;
  w.vmaIndex++;
  w.pte.resetWindow(start / ps, end / ps);
  w.range = walk.mm.notifyStart(start, end, 'protection-page');
  walk.mm.machine.flushCacheRange(walk.mm, start, end);
  walk.mm.tlbFlushPending++;
  return 0;
}

function cleanPreVma(start: number, end: number, walk: MmWalk<CleanWalk>): number {
  const w = walk.private;
  w.bitDelta = walk.vma.pgoff - walk.vma.start / walk.mm.pageSize - w.bitmapPgoff;
  return preVma(start, end, walk);
}

/**
 * One flush per VMA, over the window of PTEs the walk changed. When another
 * walker also has a flush pending (mm_tlb_flush_nested), flush the whole
 * range instead: that walker may have changed PTEs this walk then found
 * already read-only and left out of its window, and its own flush may not
 * have happened yet, so a CPU could still write through them after this call
 * returned.
 */
function postVma(walk: MmWalk<WpWalk>): void {
  const w = walk.private;
  const c = w.pte;
  const mm = walk.mm;
  const machine = mm.machine;
  const range = w.range!;
  machine.step(Step.BeforeVmaFlush, KERNEL_ACTOR, mm, -1);
  const ps = mm.pageSize;
  if (machine.config.nestedFlushRule && mm.tlbFlushNested()) {
    machine.flushTlbRange(mm, range.start, range.end, c.initiator);
    if (w.stats) w.stats.tlbFlushes++;
  } else if (c.flushEnd > c.flushStart) {
    machine.flushTlbRange(mm, c.flushStart * ps, c.flushEnd * ps, c.initiator);
    if (w.stats) w.stats.tlbFlushes++;
  }
  machine.step(Step.AfterVmaFlush, KERNEL_ACTOR, mm, -1);
  mm.notifyEnd(range);
  mm.tlbFlushPending--;
  w.range = null;
}

function hugeEntry(leaf: number, _vpn: number, _pages: number, walk: MmWalk<WpWalk>): void {
  walk.mm.machine.counters.hugeEntriesSkipped++;
  const s = walk.private.stats;
  if (s) {
    s.hugeSkipped++;
    if (leaf & (PTE_WRITE | PTE_DIRTY)) s.hugeWarnings++;
  }
}

/** Change one PTE through pte-modify, counting the strict orders' per-PTE flushes. */
function changePte(table: Int32Array, index: number, vpn: number, snapshot: number, clearBits: number, walk: MmWalk<WpWalk>): void {
  const w = walk.private;
  const c = w.pte;
  modifyPte(walk.mm, table, index, vpn, snapshot, 0, clearBits, c);
  if (w.stats && !c.deferred) w.stats.tlbFlushes++;
}

function wpPte(table: Int32Array, index: number, vpn: number, walk: MmWalk<WpWalk>): number {
  const pte = table[index]!;
  if (pte & PTE_WRITE) {
    changePte(table, index, vpn, pte, PTE_WRITE, walk);
    walk.private.total++;
  }
  return 0;
}

function cleanRecordPte(table: Int32Array, index: number, vpn: number, walk: MmWalk<CleanWalk>): number {
  const pte = table[index]!;
  if (pte & PTE_DIRTY) {
    const w = walk.private;
    const bit = vpn + w.bitDelta;
    changePte(table, index, vpn, pte, PTE_DIRTY, walk);
    w.total++;
    w.bitmap.set(bit);
    if (bit < w.start) w.start = bit;
    if (bit + 1 > w.end) w.end = bit + 1;
  }
  return 0;
}

const wpOps: WalkOps<WpWalk> = { testWalk, preVma, hugeEntry, pteEntry: wpPte, pteMask: PTE_WRITE, postVma };
const cleanOps: WalkOps<CleanWalk> = { testWalk, preVma: cleanPreVma, hugeEntry, pteEntry: cleanRecordPte, pteMask: PTE_DIRTY, postVma };

function checkRange(mapping: Mapping, firstIndex: number, nr: number): void {
  if (!Number.isInteger(firstIndex) || firstIndex < 0) throw new InvalidArgumentError(`firstIndex must be a non-negative integer, got ${firstIndex}`);
  if (!Number.isInteger(nr) || nr < 1) throw new InvalidArgumentError(`nr must be a positive integer, got ${nr}`);
  if (firstIndex + nr > mapping.nrPages) {
    throw new InvalidArgumentError(`pgoffs [${firstIndex}, ${firstIndex + nr}) exceed ${mapping.name} (${mapping.nrPages} pages)`);
  }
}

/**
 * wp_shared_mapping_range: make read-only every writable PTE mapping pgoffs
 * [firstIndex, firstIndex + nr) in shared writable VMAs. Returns how many PTEs
 * went from writable to read-only (a page mapped twice counts twice). Once it
 * returns, no CPU holds a writable TLB entry for those PTEs.
 */
export function wpSharedMappingRange(mapping: Mapping, firstIndex: number, nr: number, opts: HelperOptions = {}): number {
  checkRange(mapping, firstIndex, nr);
  const w = new WpWalk(opts, mapping);
  mapping.machine.walkObserver?.(w);
  mapping.iMmapReaders++;
  try {
    walkPageMapping(mapping, firstIndex, nr, wpOps, w);
  } finally {
    mapping.iMmapReaders--;
  }
  return w.total;
}

/**
 * clean_record_shared_mapping_range: clear D in every dirty PTE mapping pgoffs
 * [firstIndex, firstIndex + nr) in shared writable VMAs, setting bit
 * (pgoff - bitmapPgoff) for each and widening `range` (bitmap-index units,
 * in/out; `start >= end` on entry means empty, and the walk then starts from the
 * sentinel start = nr, end = 0). Bits are only ever set. Returns how many PTEs
 * were cleaned.
 *
 * Guarantees: (a) every PTE dirty when the call starts is recorded; (b) every
 * PTE dirtied after that is recorded, still dirty, or both.
 */
export function cleanRecordSharedMappingRange(
  mapping: Mapping,
  firstIndex: number,
  nr: number,
  bitmapPgoff: number,
  bitmap: Bitmap,
  range: DirtyRange,
  opts: HelperOptions = {},
): number {
  checkRange(mapping, firstIndex, nr);
  if (!Number.isInteger(bitmapPgoff) || bitmapPgoff < 0 || bitmapPgoff > firstIndex) {
    throw new InvalidArgumentError(`bitmapPgoff ${bitmapPgoff} must be an integer in [0, firstIndex=${firstIndex}]`);
  }
  if (firstIndex - bitmapPgoff + nr > bitmap.size) {
    throw new InvalidArgumentError(`bitmap of ${bitmap.size} bits cannot cover bits [${firstIndex - bitmapPgoff}, ${firstIndex - bitmapPgoff + nr})`);
  }
  if (!Number.isInteger(range.start) || !Number.isInteger(range.end)) throw new InvalidArgumentError('range start/end must be integers');
  const empty = range.start >= range.end;
  const w = new CleanWalk(opts, mapping, bitmap, bitmapPgoff, empty ? nr : range.start, empty ? 0 : range.end);
  mapping.machine.walkObserver?.(w);
  mapping.iMmapReaders++;
  try {
    walkPageMapping(mapping, firstIndex, nr, cleanOps, w);
  } finally {
    mapping.iMmapReaders--;
  }
  range.start = w.start;
  range.end = w.end;
  return w.total;
}
