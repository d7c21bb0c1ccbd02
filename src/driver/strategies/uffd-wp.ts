import {
  type Bitmap, type Mm, PAGE_IS_WRITTEN, PM_SCAN_CHECK_WPASYNC, PM_SCAN_WP_MATCHING, type PageRegion, type PmScanArgs,
  UFFD_FEATURE_WP_ASYNC, UFFD_FEATURE_WP_UNPOPULATED, Userfaultfd, VM_MAYWRITE, VM_UFFD_WP, type Vma, type WpMemory,
  InvalidArgumentError, PTE_PRESENT, pagemapScan, userfaultfdOf,
} from '../../core/index.js';
import type { Bo } from '../bo.js';
import type { DirtyStrategy, DirtyTracker, ScanReport } from './contract.js';
import { forEachBoMapping, recordRegions } from './mappings.js';
import { DirtyRecord } from './record.js';

/** PAGEMAP_SCAN arguments of clean-and-record: written pages, reported and write-protected again in one walk. */
const COLLECT = { flags: PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, categoryMask: PAGE_IS_WRITTEN, returnMask: PAGE_IS_WRITTEN } as const;
/** The same, reading only (peekDirty). */
const PEEK = { categoryMask: PAGE_IS_WRITTEN, returnMask: PAGE_IS_WRITTEN } as const;

/**
 * userfaultfd write-protect in async mode with PAGEMAP_SCAN, as a driver
 * would have to use it. Registration is per VMA range of one process and
 * the protection lives in that process's PTEs, so a BO mapped in two
 * processes is registered, protected and scanned in each: every process
 * needs a userfaultfd of its own (one per mm, shared by the driver's BOs),
 * and every scan is one PAGEMAP_SCAN (WP_MATCHING) per mapping of the BO.
 * The scan reports and re-protects in one atomic walk per PTE table, so
 * unlike soft-dirty no write can fall between reading and protecting.
 *
 * A mapping the tracker has not registered yet (made by mm.mmap directly,
 * not Driver.mmap) is registered at the next scan: its written pages and
 * its empty slots read as written then (a false positive, once). In a
 * process with a sync-mode userfaultfd nothing can be registered: mapped()
 * refuses, and a mapping made there anyway reads as written whole at every scan. Unmapping
 * drops the VMA's written state with it, so a munmap harvests first; a zap
 * by the driver keeps the markers of protected pages, which stay protected.
 *
 * A BO in real memory (`--memory real`: its store carries a WpMemory) is
 * tracked the same way on the running kernel, over the BO's own memfd.
 */
class UffdWpTracker extends DirtyRecord implements DirtyTracker {
  readonly method = 'uffd-wp';
  readonly switches = 0;

  constructor(readonly bo: Bo, private readonly uffds: UffdContexts) {
    super(bo.pages);
  }

  mapWritable(): boolean {
    return true; // a registered VMA's faults through markers map protected by themselves
  }

  mkwrite(): void {}

  /**
   * Register a new mapping of the BO at once. A VMA nothing was ever mapped
   * through (no present PTE) cannot have been written: protecting it whole
   * loses nothing and over-reports nothing. Otherwise (mm.mmap merged it
   * with an older VMA) it is adopted like a mapping found at a scan.
   */
  mapped(vma: Vma): void {
    const first = Math.max(this.bo.offset, vma.pgoff);
    const last = Math.min(this.bo.offset + this.bo.pages, vma.pgoffEnd);
    if (first >= last || vma.flags & VM_UFFD_WP || !(vma.flags & VM_MAYWRITE)) return;
    const s = vma.addressOf(first);
    const e = vma.addressOf(last);
    this.bo.reservation.hold('register', () => {
      const uffd = this.uffds.require(vma.mm);
      const untouched = !anyPresent(vma.mm, s, e);
      uffd.register(s, e - s);
      if (untouched) uffd.writeProtect(s, e - s, true);
    });
  }

  scan(): ScanReport {
    return this.bo.reservation.hold('scan', () => {
      // Adopt mappings the tracker was not told of: registered but not protected, so the
      // scan below reports (and protects) every page that may have been written through them.
      // One that cannot be registered (its process has a sync-mode userfaultfd) is reported
      // whole at every scan: over-reported, never lost, and no reason to fail the flush.
      let found = 0;
      forEachBoMapping(this.bo, 0, this.pages, (vma, s, e) => {
        if (vma.flags & VM_UFFD_WP || !(vma.flags & VM_MAYWRITE)) return;
        const uffd = this.uffds.of(vma.mm);
        if (uffd !== null) uffd.register(s, e - s);
        else found += this.markMapped(vma, s, e);
      });
      forEachBoMapping(this.bo, 0, this.pages, (vma, s, e) => {
        if (vma.flags & VM_UFFD_WP) found += recordRegions(this, this.bo, vma, scanAll(vma.mm, s, e, COLLECT));
      });
      return { found, switchedTo: null };
    });
  }

  /** munmap loses the written state of the VMA and a zap that of written pages: collect it first. */
  beforeUnmap(from: number, to: number): void {
    this.bo.reservation.hold('pre-unmap', () => {
      forEachBoMapping(this.bo, from, to, (vma, s, e) => {
        if (vma.flags & VM_UFFD_WP) recordRegions(this, this.bo, vma, scanAll(vma.mm, s, e, COLLECT));
        else if (vma.flags & VM_MAYWRITE) this.markMapped(vma, s, e);
      });
    });
  }

  /** Record every BO page [start, end) of an unregistered vma maps (any may have been written); returns the pages. */
  private markMapped(vma: Vma, start: number, end: number): number {
    this.markDirty(vma.pgoffAt(start) - this.bo.offset, vma.pgoffAt(end - 1) + 1 - this.bo.offset);
    return (end - start) / vma.mm.pageSize;
  }

  override peekDirty(out: Bitmap): void {
    super.peekDirty(out);
    const scratch = new DirtyRecord(this.pages);
    forEachBoMapping(this.bo, 0, this.pages, (vma, s, e) => {
      if (vma.flags & VM_UFFD_WP) recordRegions(scratch, this.bo, vma, scanAll(vma.mm, s, e, PEEK));
      else scratch.markDirty(vma.pgoffAt(s) - this.bo.offset, vma.pgoffAt(e - 1) + 1 - this.bo.offset);
    });
    scratch.peekDirty(out);
  }
}

/** Whether any page of [start, end) of mm has a present PTE. */
function anyPresent(mm: Mm, start: number, end: number): boolean {
  for (let vpn = start / mm.pageSize; vpn < end / mm.pageSize; vpn++) if (mm.readPte(vpn) & PTE_PRESENT) return true;
  return false;
}

/** PAGEMAP_SCAN of [start, end) of mm, looping from walk_end while the vector fills. */
function scanAll(mm: Mm, start: number, end: number, args: Omit<PmScanArgs, 'start' | 'end' | 'vecLen'>): PageRegion[] {
  const vecLen = (end - start) / mm.pageSize + 1;
  const out: PageRegion[] = [];
  for (let at = start; at < end; ) {
    const r = pagemapScan(mm, { ...args, start: at, end, vecLen });
    out.push(...r.regions);
    if (r.regions.length < vecLen) break;
    at = r.walkEnd;
  }
  return out;
}

/** One async userfaultfd per process, shared by the driver's BOs (the simulator allows one per mm). */
class UffdContexts {
  /** mm's async userfaultfd (made on first use), or null when mm already has a sync-mode one. */
  of(mm: Mm): Userfaultfd | null {
    const have = userfaultfdOf(mm);
    if (have === null) return new Userfaultfd(mm, UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED);
    return have.async ? have : null;
  }

  /** mm's async userfaultfd; InvalidArgumentError when mm has a sync-mode one (Driver.mmap refuses the mapping). */
  require(mm: Mm): Userfaultfd {
    const uffd = this.of(mm);
    if (uffd === null) throw new InvalidArgumentError(`mm${mm.id} has a sync-mode userfaultfd: the uffd-wp strategy needs async write-protect (UFFD_FEATURE_WP_ASYNC)`);
    return uffd;
  }
}

/**
 * The same tracker over a BO in real memory: its store's WpMemory (the BO's
 * own memfd region) is registered and write-protected whole at creation;
 * a scan is PAGEMAP_SCAN with WP_MATCHING on the running kernel. Nothing
 * zaps real memory, so beforeUnmap has nothing to keep.
 */
class RealUffdWpTracker extends DirtyRecord implements DirtyTracker {
  readonly method = 'uffd-wp';
  readonly switches = 0;

  constructor(private readonly wp: WpMemory) {
    super(wp.pages);
    wp.register(0, wp.pages);
    wp.writeProtect(0, wp.pages, true);
  }

  mapWritable(): boolean {
    return true;
  }

  mkwrite(): void {}

  beforeUnmap(): void {}

  scan(): ScanReport {
    let found = 0;
    for (const r of this.collect(COLLECT)) {
      this.markDirty(r.start, r.end);
      found += r.end - r.start;
    }
    return { found, switchedTo: null };
  }

  override peekDirty(out: Bitmap): void {
    super.peekDirty(out);
    for (const r of this.collect(PEEK)) out.setRange(r.start, r.end);
  }

  private collect(args: Omit<PmScanArgs, 'start' | 'end' | 'vecLen'>): PageRegion[] {
    const vecLen = 512;
    const out: PageRegion[] = [];
    for (let start = 0; start < this.pages; ) {
      const r = this.wp.scan({ ...args, start, end: this.pages, vecLen });
      out.push(...r.regions);
      if (r.regions.length < vecLen) break;
      start = r.walkEnd;
    }
    return out;
  }
}

export const uffdWpStrategy: DirtyStrategy = {
  name: 'uffd-wp',
  description: 'per process: async userfaultfd write-protect on every mapping, PAGEMAP_SCAN with WP_MATCHING (shmem BOs; real memory too)',
  backing: 'shmem',
  realMemory: true,
  createTracker: (bo, env) => {
    const wp = bo.store.wp;
    return wp !== undefined ? new RealUffdWpTracker(wp) : new UffdWpTracker(bo, env.shared('uffd-wp', () => new UffdContexts()));
  },
};
