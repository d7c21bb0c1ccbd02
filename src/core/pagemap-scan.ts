import { InvalidArgumentError } from './errors.js';
import type { Mm } from './mm.js';
import { MAX_VPN } from './pagetable.js';
import { type MmWalk, type WalkOps, walkPageRange } from './pagewalk.js';
import { PteChange, type WalkLocals, modifyPte } from './pte-modify.js';
import { PTE_NONE, PTE_PRESENT, PTE_SOFT_DIRTY, PTE_SPECIAL, PTE_UFFD_MARKER, PTE_UFFD_WP, PTE_WRITE } from './pte.js';
import { KernelError, userfaultfdOf } from './uffd-wp.js';
import { VM_PFNMAP, VM_SOFTDIRTY, VM_UFFD_WP, type Vma } from './vma.js';

/**
 * The PAGEMAP_SCAN ioctl on /proc/PID/pagemap, as
 * Linux 6.18 behaves — checked region for region against the real kernel by
 * `vgpu-dirty difftest`. Find the pages of a VA range whose categories match
 * the masks, report them as merged regions, and with PM_SCAN_WP_MATCHING
 * write-protect (uffd-wp) the written ones in the same walk: the
 * clean-and-record pattern of userspace.
 *
 * Behaviour the kernel has and this keeps, found by the differential test:
 * an empty slot of a PTE table counts as WRITTEN, and so does a range with
 * no PTE table in a VMA registered for uffd-wp (elsewhere it does not, so
 * which pages share a table shows); a uffd-wp marker counts as SWAPPED and
 * not WRITTEN; with no output
 * vector WP_MATCHING protects every slot of a populated table whatever the
 * masks say; and when a scan stops early for a full bounce buffer and then
 * finishes, walk_end keeps the early stop.
 */

export const PM_SCAN_WP_MATCHING = 1 << 0;
export const PM_SCAN_CHECK_WPASYNC = 1 << 1;
const PM_SCAN_FLAGS = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC;

export const PAGE_IS_WPALLOWED = 1 << 0;
export const PAGE_IS_WRITTEN = 1 << 1;
export const PAGE_IS_FILE = 1 << 2;
export const PAGE_IS_PRESENT = 1 << 3;
export const PAGE_IS_SWAPPED = 1 << 4;
export const PAGE_IS_PFNZERO = 1 << 5;
export const PAGE_IS_HUGE = 1 << 6;
export const PAGE_IS_SOFT_DIRTY = 1 << 7;
export const PAGE_IS_GUARD = 1 << 8;
export const PM_SCAN_CATEGORIES = (1 << 9) - 1;

/** Regions the kernel gathers per walk before copying out (`PAGEMAP_WALK_SIZE >> PAGE_SHIFT`). */
export const PAGEMAP_BOUNCE_REGIONS = 512;

/** struct pm_scan_arg without size/vec pointers: `vecLen` regions of output, 0 for none (vec == NULL). */
export interface PmScanArgs {
  start: number;
  end: number;
  flags?: number;
  vecLen: number;
  /** 0: unlimited. */
  maxPages?: number;
  categoryInverted?: number;
  categoryMask?: number;
  categoryAnyofMask?: number;
  returnMask?: number;
}

/** struct page_region: [start, end) with the reported categories (masked by returnMask). */
export interface PageRegion {
  start: number;
  end: number;
  categories: number;
}

export interface PmScanResult {
  regions: PageRegion[];
  /** Where the walk stopped (the kernel writes it back into the argument). */
  walkEnd: number;
}

/** Walk state (struct pagemap_scan_private). Addresses in vpns. */
class ScanWalk implements WalkLocals {
  readonly flags: number;
  readonly inverted: number;
  readonly mask: number;
  readonly anyof: number;
  readonly ret: number;
  readonly maxPages: number;
  readonly interest: number;
  /** The case the kernel has a loop of its own for: find written pages, report them as written. */
  readonly writtenOnly: boolean;
  readonly hasVec: boolean;
  /**
   * Bounce buffer of this walk, flushed to `out` after it: slots 0..length-1,
   * the last one current; a current slot with end 0 is unused.
   */
  buf: PageRegion[] = [{ start: 0, end: 0, categories: 0 }];
  bufLen: number;
  vecLeft: number;
  foundPages = 0;
  /** 0 until a walk stops early (ENOSPC). */
  walkEnd = 0;
  /** Set by output() when the walk must stop (-ENOSPC). */
  stopped = false;
  vmaCategory = 0;
  readonly out: PageRegion[] = [];
  /** VMAs whose walk has begun, over every pass. */
  vmaIndex = 0;
  /** The PTE being protected, and the current table's flush window. */
  readonly pte: PteChange;

  constructor(mm: Mm, a: PmScanArgs) {
    this.pte = new PteChange(mm.machine);
    this.flags = a.flags ?? 0;
    this.inverted = a.categoryInverted ?? 0;
    this.mask = a.categoryMask ?? 0;
    this.anyof = a.categoryAnyofMask ?? 0;
    this.ret = a.returnMask ?? 0;
    // No limit: more pages than an address space has (a small integer keeps the field untagged).
    this.maxPages = a.maxPages || MAX_VPN + 1;
    this.interest = this.mask | this.anyof | this.ret;
    this.writtenOnly = this.anyof === 0 && this.inverted === 0 && this.mask === PAGE_IS_WRITTEN && this.ret === PAGE_IS_WRITTEN;
    this.hasVec = a.vecLen > 0;
    this.vecLeft = a.vecLen;
    this.bufLen = Math.min(PAGEMAP_BOUNCE_REGIONS, a.vecLen);
  }

  /** Pages reported so far. */
  get total(): number {
    return this.foundPages;
  }

  /** The regions gathered so far (copied out and in the bounce buffer): what the walk reports when it ends. */
  digest(h: { word(w: number): void }): void {
    h.word(this.out.length);
    for (const r of this.out) {
      h.word(r.start);
      h.word(r.end);
      h.word(r.categories);
    }
    h.word(this.buf.length);
    for (const r of this.buf) {
      h.word(r.start);
      h.word(r.end);
      h.word(r.categories);
    }
    h.word(this.walkEnd);
  }

  interesting(categories: number): boolean {
    const c = categories ^ this.inverted;
    if ((c & this.mask) !== this.mask) return false;
    return this.anyof === 0 || (c & this.anyof) !== 0;
  }

  /**
   * pagemap_scan_output: report [addr, end) (vpns) with `categories`; returns
   * the end actually reported (== addr when nothing fit) and records walkEnd
   * when the output is cut short by maxPages or a full buffer.
   */
  output(categories: number, addr: number, end: number): number {
    if (!this.hasVec) return end;
    const c = categories & this.ret;
    let n = end - addr;
    let full = false;
    if (this.foundPages + n > this.maxPages) {
      const tooMany = this.foundPages + n - this.maxPages;
      end -= tooMany;
      n -= tooMany;
      full = true;
    }
    if (!this.push(c, addr, end)) {
      end = addr;
      n = 0;
      full = true;
    }
    this.foundPages += n;
    if (full) {
      this.walkEnd = end;
      this.stopped = true;
    }
    return end;
  }


  /** pagemap_scan_push_range: extend the current region or start a new one if the buffer has room. */
  private push(c: number, addr: number, end: number): boolean {
    const cur = this.buf[this.buf.length - 1]!;
    if (addr === cur.end && c === cur.categories) {
      cur.end = end;
      return true;
    }
    if (cur.end === 0) {
      cur.start = addr;
      cur.end = end;
      cur.categories = c;
      return true;
    }
    if (this.buf.length >= this.bufLen) return false;
    this.buf.push({ start: addr, end, categories: c });
    return true;
  }

  /** pagemap_scan_flush_buffer: copy out every slot before the current one, and the current one unless empty. */
  flush(): void {
    if (!this.hasVec) return;
    const buf = this.buf;
    const last = buf[buf.length - 1]!;
    const n = last.end !== last.start ? buf.length : buf.length - 1;
    for (let i = 0; i < n; i++) this.out.push(buf[i]!);
    this.vecLeft -= n;
    this.bufLen = Math.min(this.bufLen, this.vecLeft);
    this.buf = [{ start: 0, end: 0, categories: 0 }];
  }
}

const ENOSPC = -28;
const EPERM = -1;

/** Categories of one PTE slot, without the VMA's (pagemap_page_category). */
function pteCategories(pte: number, interest: number): number {
  if (pte === PTE_NONE) return PAGE_IS_WRITTEN;
  if (!(pte & PTE_PRESENT)) {
    // The only non-present entry is the uffd-wp marker, which reads as a swap entry.
    return PAGE_IS_SWAPPED;
  }
  let c = PAGE_IS_PRESENT;
  if (!(pte & PTE_UFFD_WP)) c |= PAGE_IS_WRITTEN;
  // Page-cache pages of a shmem VMA; copy-on-write copies are anonymous.
  if (interest & PAGE_IS_FILE && pte & PTE_SPECIAL) c |= PAGE_IS_FILE;
  if (pte & PTE_SOFT_DIRTY) c |= PAGE_IS_SOFT_DIRTY;
  return c;
}

/** VMAs registered in async write-protect mode (userfaultfd_wp_async && use_markers). */
function wpAllowed(vma: Vma): boolean {
  return (vma.flags & VM_UFFD_WP) !== 0 && userfaultfdOf(vma.mm)?.async === true;
}

function testWalk(vma: Vma, walk: MmWalk<ScanWalk>): number {
  const p = walk.private;
  const allowed = wpAllowed(vma);
  if (!allowed) {
    if (p.flags & PM_SCAN_CHECK_WPASYNC) return EPERM;
    if (p.flags & PM_SCAN_WP_MATCHING && !walk.mm.machine.config.scanProtectsUnregistered) return 1;
  }
  if (vma.flags & VM_PFNMAP) return 1;
  let c = 0;
  if (allowed) c |= PAGE_IS_WPALLOWED;
  if (vma.flags & VM_SOFTDIRTY) c |= PAGE_IS_SOFT_DIRTY;
  const required = p.mask & PAGE_IS_WPALLOWED;
  if (((c ^ p.inverted) & required) !== required) return 1;
  p.vmaCategory = c;
  p.vmaIndex++;
  return 0;
}

/**
 * Protect one slot for uffd-wp (make_uffd_wp_pte): a present entry through
 * modifyPte (write-protected, uffd-wp set, built from what modify_prot_start
 * returned), an empty one gets a marker. Either way the slot joins the
 * table's flush window.
 */
function protect(mm: Mm, table: Int32Array, i: number, vpn: number, c: PteChange): void {
  const pte = table[i]!;
  if (pte & PTE_PRESENT) modifyPte(mm, table, i, vpn, pte, PTE_UFFD_WP, PTE_WRITE, c);
  else {
    mm.pageTable.set(vpn, PTE_UFFD_MARKER);
    c.widen(vpn);
  }
}

/**
 * pagemap_scan_pmd_entry: one PTE table, lock held. The entries it protected
 * are flushed before the lock is released, from the first protected entry to
 * where the loop ended: once the table is unlocked, no CPU can write through
 * a stale writable entry of a page the scan reported, so every later write
 * faults and clears the uffd-wp bit again.
 */
function scanTable(table: Int32Array, from: number, to: number, base: number, walk: MmWalk<ScanWalk>): number {
  const p = walk.private;
  const mm = walk.mm;
  const c = p.pte;
  const wp = (p.flags & PM_SCAN_WP_MATCHING) !== 0;
  c.resetWindow(base + from, base + to);
  let i = from;
  if (wp && !p.hasVec) {
    // Protect-only: every slot not yet protected, whatever the masks.
    for (; i < to; i++) {
      if (table[i]! & PTE_UFFD_WP) continue;
      protect(mm, table, i, base + i, c);
    }
  } else {
    const written = p.writtenOnly;
    for (; i < to; i++) {
      const pte = table[i]!;
      // The kernel's own loop for "written pages, reported as written": one bit test per slot.
      if (written && pte & PTE_UFFD_WP) continue;
      const vpn = base + i;
      const cat = written ? p.vmaCategory | PAGE_IS_WRITTEN : p.vmaCategory | pteCategories(pte, p.interest);
      if (!written && !p.interesting(cat)) continue;
      const next = p.output(cat, vpn, vpn + 1);
      if (next === vpn) break;
      if (!wp || !(cat & PAGE_IS_WRITTEN)) continue;
      protect(mm, table, i, vpn, c);
    }
  }
  if (c.flushEnd > c.flushStart && !mm.machine.config.scanWithoutTlbFlush) mm.machine.flushTlbRange(mm, c.flushStart * mm.pageSize, (base + Math.min(i, to)) * mm.pageSize);
  return p.stopped ? ENOSPC : 0;
}

/**
 * pagemap_scan_pte_hole: a range without PTE table. In a VMA registered for
 * uffd-wp it reads as written (unpopulated and not protected), like an
 * empty slot; elsewhere it has only the VMA's categories.
 */
function scanHole(sv: number, ev: number, walk: MmWalk<ScanWalk>): number {
  const p = walk.private;
  const c = walk.vma.flags & VM_UFFD_WP ? p.vmaCategory | PAGE_IS_WRITTEN : p.vmaCategory;
  if (!p.interesting(c)) return 0;
  const end = p.output(c, sv, ev);
  if (end > sv && p.flags & PM_SCAN_WP_MATCHING) {
    const pt = walk.mm.pageTable;
    for (let v = sv; v < end; v++) pt.set(v, PTE_UFFD_MARKER);
  }
  return p.stopped ? ENOSPC : 0;
}

const scanOps: WalkOps<ScanWalk> = { testWalk, pteTable: scanTable, pteHole: scanHole };

/**
 * ioctl(pagemap_fd, PAGEMAP_SCAN, args) on `mm`. Throws InvalidArgumentError
 * (EINVAL) for bad arguments and KernelError EPERM when PM_SCAN_CHECK_WPASYNC
 * meets a VMA not registered in async mode.
 */
export function pagemapScan(mm: Mm, args: PmScanArgs): PmScanResult {
  const ps = mm.pageSize;
  const flags = args.flags ?? 0;
  if (flags & ~PM_SCAN_FLAGS) throw new InvalidArgumentError(`PAGEMAP_SCAN: unknown flags 0x${flags.toString(16)}`);
  const masks = (args.categoryInverted ?? 0) | (args.categoryMask ?? 0) | (args.categoryAnyofMask ?? 0) | (args.returnMask ?? 0);
  if (masks & ~PM_SCAN_CATEGORIES) throw new InvalidArgumentError(`PAGEMAP_SCAN: unknown categories 0x${masks.toString(16)}`);
  if (!Number.isInteger(args.start) || args.start < 0 || args.start % ps !== 0) throw new InvalidArgumentError('PAGEMAP_SCAN: start is not page aligned');
  if (!Number.isInteger(args.end) || args.end < args.start || args.end > MAX_VPN * ps) throw new InvalidArgumentError('PAGEMAP_SCAN: bad end');
  if (!Number.isInteger(args.vecLen) || args.vecLen < 0) throw new InvalidArgumentError('PAGEMAP_SCAN: bad vecLen');
  if (args.maxPages !== undefined && (!Number.isInteger(args.maxPages) || args.maxPages < 0)) throw new InvalidArgumentError('PAGEMAP_SCAN: bad maxPages');
  const end = Math.ceil(args.end / ps);
  const p = new ScanWalk(mm, args);
  mm.machine.walkObserver?.(p);
  for (let walkStart = args.start / ps; walkStart < end; walkStart = p.walkEnd) {
    const range = flags & PM_SCAN_WP_MATCHING ? mm.notifyStart(walkStart * ps, end * ps, 'protection-vma') : null;
    p.stopped = false;
    let r: number;
    try {
      r = walkPageRange(mm, walkStart * ps, end * ps, scanOps, p);
    } finally {
      if (range !== null) mm.notifyEnd(range);
    }
    p.flush();
    if (r === EPERM) throw new KernelError('EPERM', 'PAGEMAP_SCAN: PM_SCAN_CHECK_WPASYNC met a VMA not registered for async uffd-wp');
    if (r !== ENOSPC) break;
    if (p.vecLeft === 0 || p.foundPages === p.maxPages) break;
  }
  const walkEnd = p.walkEnd === 0 ? end : p.walkEnd;
  return {
    regions: p.out.map((r) => ({ start: r.start * ps, end: r.end * ps, categories: r.categories })),
    walkEnd: walkEnd * ps,
  };
}
