import {
  type Bitmap, type Machine, type Mapping, type Mm, PAGE_IS_SOFT_DIRTY, type Vma, clearRefsSoftDirty, pagemapScan,
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
 * mapped there, of this driver or any other on the machine (their bits are
 * about to be cleared too), and only then clear. The read is PAGEMAP_SCAN's PAGE_IS_SOFT_DIRTY category (the
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
    harvest.add(this);
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
    this.harvest.delete(this.bo);
  }

  private count(): number {
    return this.bitmap.count();
  }
}

/**
 * The soft-dirty trackers of every driver on one machine, harvested together
 * per process. clear_refs clears the bits of the whole process, whichever
 * driver's BOs they belong to, so the read before it must cover every
 * soft-dirty BO mapped there — a registry per driver would let one driver's
 * scan clear bits another driver's trackers have not read.
 */
class SoftDirtyHarvest {
  private readonly trackers = new Map<Bo, SoftDirtyTracker>();
  /** The BO space of each device address space a tracked BO lives in. */
  private readonly spaces = new Map<Mapping, BoSpace>();

  /** The machine's harvest: one per Machine, shared by all its drivers. */
  static of(machine: Machine): SoftDirtyHarvest {
    let h = harvests.get(machine);
    if (h === undefined) harvests.set(machine, (h = new SoftDirtyHarvest()));
    return h;
  }

  add(tracker: SoftDirtyTracker): void {
    this.trackers.set(tracker.bo, tracker);
    this.spaces.set(tracker.bo.mapping, tracker.bo.space);
  }

  delete(bo: Bo): void {
    this.trackers.delete(bo);
  }

  /**
   * Record the soft-dirty pages of every tracked BO mapped in mm (of any
   * driver), then clear_refs mm, holding the reservations of those BOs throughout.
   */
  readAndClear(mm: Mm): void {
    const vmas = mm.vmas.filter((v) => this.spaces.has(v.mapping));
    const bos = [...this.trackers.keys()].filter((bo) => vmas.some((v) => v.mapping === bo.mapping && bo.offset < v.pgoffEnd && bo.offset + bo.pages > v.pgoff));
    holdAll(bos, 'scan', () => {
      for (const v of vmas) this.read(v, v.start, v.end, (bo) => this.trackers.get(bo));
      clearRefsSoftDirty(mm);
    });
  }

  /** Record the soft-dirty pages of [start, end) of vma, BO by BO, into recordOf(bo). Reads, clears nothing. */
  read(vma: Vma, start: number, end: number, recordOf: (bo: Bo) => DirtyRecord | undefined): void {
    const space = this.spaces.get(vma.mapping);
    if (space === undefined) return;
    const pages = (end - start) / vma.mm.pageSize;
    const r = pagemapScan(vma.mm, { start, end, vecLen: pages + 1, categoryMask: PAGE_IS_SOFT_DIRTY, returnMask: PAGE_IS_SOFT_DIRTY });
    for (const g of r.regions) {
      space.forEachBoIn(vma.pgoffAt(g.start), vma.pgoffAt(g.end - 1) + 1, (bo, from, to) => recordOf(bo)?.markDirty(from, to));
    }
  }
}

const harvests = new WeakMap<Machine, SoftDirtyHarvest>();

/** Run fn holding the reservations of `bos`; those taken are released however fn ends. */
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
  createTracker: (bo) => new SoftDirtyTracker(bo, SoftDirtyHarvest.of(bo.space.machine)),
};
