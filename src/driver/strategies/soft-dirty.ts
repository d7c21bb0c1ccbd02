import {
  type Bitmap, type Mm, PAGE_IS_SOFT_DIRTY, type Vma, clearRefsSoftDirty, pagemapScan,
} from '../../core/index.js';
import type { Bo, BoSpace } from '../bo.js';
import type { DirtyStrategy, DirtyTracker, ScanReport } from './contract.js';
import { forEachBoMapping, mmsMapping } from './mappings.js';
import { DirtyRecord } from './record.js';

/**
 * Soft-dirty as a driver would have to use it. The mechanism is per
 * process, not per BO: clear_refs (`echo 4 > /proc/PID/clear_refs`) resets
 * and write-protects every PTE of the whole process, and only a write
 * fault sets the bit again. So a scan of one BO must, in every process
 * that maps it, first read the soft-dirty pages of *every* soft-dirty BO
 * mapped there (their bits are about to be cleared too), and only then
 * clear. The read is PAGEMAP_SCAN's PAGE_IS_SOFT_DIRTY category (the
 * pagemap bit 55, by region).
 *
 * The read and the clear are two steps: a write fault that completes
 * between them is lost. The fault handlers take the BO reservations the
 * harvest holds, so no BO write completes in between; a real driver has
 * no such lock over another process's faults (CRIU freezes the process).
 *
 * Zapping a PTE loses its bit: the driver's zaps (a device write) and a
 * user's munmap harvest first (beforeUnmap). A new mapping reads dirty as a
 * whole until the next clear (VM_SOFTDIRTY): false positives, never losses.
 */
class SoftDirtyTracker extends DirtyRecord implements DirtyTracker {
  readonly method = 'soft-dirty';
  readonly switches = 0;

  constructor(readonly bo: Bo, private readonly harvest: SoftDirtyHarvest) {
    super(bo.pages);
    harvest.trackers.set(bo, this);
  }

  mapWritable(): boolean {
    return true; // the fault path itself maps read-only after clear_refs (write notify)
  }

  mkwrite(): void {}

  scan(): ScanReport {
    const before = this.count();
    for (const mm of mmsMapping(this.bo)) this.harvest.readAndClear(mm);
    return { found: this.count() - before, switchedTo: null };
  }

  beforeUnmap(from: number, to: number): void {
    this.bo.reservation.hold('pre-unmap', () => {
      forEachBoMapping(this.bo, from, to, (vma, s, e) => this.harvest.read(vma, s, e, () => this));
    });
  }

  override peekDirty(out: Bitmap): void {
    super.peekDirty(out);
    const scratch = new DirtyRecord(this.pages);
    forEachBoMapping(this.bo, 0, this.pages, (vma, s, e) => this.harvest.read(vma, s, e, () => scratch));
    scratch.peekDirty(out);
  }

  dispose(): void {
    this.harvest.trackers.delete(this.bo);
  }

  private count(): number {
    return this.bitmap.count();
  }
}

/** The soft-dirty trackers of one driver, harvested together per process. */
class SoftDirtyHarvest {
  readonly trackers = new Map<Bo, SoftDirtyTracker>();

  constructor(private readonly space: BoSpace) {}

  /**
   * Record the soft-dirty pages of every tracked BO mapped in mm, then
   * clear_refs mm, holding the reservations of those BOs throughout.
   */
  readAndClear(mm: Mm): void {
    const vmas = mm.vmas.filter((v) => v.mapping === this.space.mapping);
    const bos = [...this.trackers.keys()].filter((bo) => vmas.some((v) => bo.offset < v.pgoffEnd && bo.offset + bo.pages > v.pgoff));
    holdAll(bos.sort((a, b) => a.id - b.id), 'scan', () => {
      for (const v of vmas) this.read(v, v.start, v.end, (bo) => this.trackers.get(bo));
      clearRefsSoftDirty(mm);
    });
  }

  /** Record the soft-dirty pages of [start, end) of vma, BO by BO, into recordOf(bo). Reads, clears nothing. */
  read(vma: Vma, start: number, end: number, recordOf: (bo: Bo) => DirtyRecord | undefined): void {
    const pages = (end - start) / vma.mm.pageSize;
    const r = pagemapScan(vma.mm, { start, end, vecLen: pages + 1, categoryMask: PAGE_IS_SOFT_DIRTY, returnMask: PAGE_IS_SOFT_DIRTY });
    for (const g of r.regions) {
      const last = vma.pgoffAt(g.end - 1) + 1;
      for (let p = vma.pgoffAt(g.start); p < last; ) {
        const bo = this.space.boAt(p);
        if (bo === null) {
          p++; // between BOs: no tracker's page
          continue;
        }
        const to = Math.min(last, bo.offset + bo.pages);
        recordOf(bo)?.markDirty(p - bo.offset, to - bo.offset);
        p = to;
      }
    }
  }
}

/** Run fn holding the reservations of `bos` (taken in id order). */
function holdAll<T>(bos: readonly Bo[], who: string, fn: () => T): T {
  let taken = 0;
  try {
    for (const bo of bos) {
      bo.reservation.reserve(who);
      taken++;
    }
    return fn();
  } finally {
    for (let i = 0; i < taken; i++) bos[i]!.reservation.unreserve();
  }
}

export const softDirtyStrategy: DirtyStrategy = {
  name: 'soft-dirty',
  description: 'per process: read the soft-dirty bits of every process mapping the BO, then clear_refs it (shmem BOs)',
  backing: 'shmem',
  machine: { softDirty: true },
  createTracker: (bo, env) => new SoftDirtyTracker(bo, env.shared('soft-dirty', () => new SoftDirtyHarvest(bo.space))),
};
