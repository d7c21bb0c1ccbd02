/**
 * One execution's world: a tiny machine built for a scenario, the oracle of
 * last written values and the device's copy of the BO. Built once per
 * explorer and returned to a saved state (save / restore) for every
 * execution, instead of being rebuilt.
 *
 * Core layer: the BO is a plain device file (fault-around of writable PTEs)
 * and the kernel actors call the helpers directly; with a userspace tracker
 * it is a memfd mapped by one process, tracked from the start (registered
 * for async uffd-wp and write-protected once, or after one clear_refs). Driver layer: the BO lives
 * in a BoSpace with the driver's vm_ops (reservation, MKWRITE, mkwrite
 * recording), has a BoDirtyTracker and buffer resources, and the kernel actors
 * validate resources as command submission does.
 *
 * Small on purpose: 64-byte pages, memory for the BO only, and a fully
 * associative TLB with one entry per page the CPUs can touch, so no TLB entry
 * is ever evicted (the replacement pointer then never matters, and state
 * hashing can ignore it).
 */
import { Bitmap } from '../core/bitmap.js';
import { type HelperStats, cleanRecordSharedMappingRange, wpSharedMappingRange } from '../core/dirty-helpers.js';
import { Machine, type MachineState } from '../core/machine.js';
import type { Mapping } from '../core/mapping.js';
import type { Mm } from '../core/mm.js';
import { PM_SCAN_CHECK_WPASYNC, PM_SCAN_WP_MATCHING, PAGE_IS_WRITTEN, pagemapScan } from '../core/pagemap-scan.js';
import { PAGES_PER_PMD } from '../core/pagetable.js';
import { PTE_DIRTY, PTE_UFFD_MARKER, PTE_UFFD_WP } from '../core/pte.js';
import { shmemFileOps } from '../core/shmem.js';
import { KERNEL_ACTOR, Step } from '../core/step.js';
import { PM_SOFT_DIRTY, clearRefsSoftDirty, readPagemap } from '../core/soft-dirty.js';
import { Userfaultfd } from '../core/uffd-wp.js';
import { VM_MAYWRITE, VM_SHARED, type Vma } from '../core/vma.js';
import { type Bo, BoSpace } from '../driver/bo.js';
import { DEFAULT_DIRTY_CONFIG, type DirtyConfig } from '../driver/config.js';
import { BoDirtyTracker, type TrackerState } from '../driver/dirty-tracker.js';
import { BufferResource } from '../driver/resource.js';
import { boVmOps } from '../driver/vm-ops.js';
import { type Op, type Scenario, type TrackerName, trackerOf } from './scenario.js';

export const PAGE_SIZE = 64;

/** A process's mapping of the BO. */
export interface View {
  readonly mm: Mm;
  /** The VMA as mapped (a munmap removes it from the mm; its address stays what steps refer to). */
  readonly vma: Vma;
  /** First BO page mapped, and the vpn it is mapped at. */
  readonly first: number;
  readonly baseVpn: number;
  readonly pages: number;
  /** Shared and writable: what the helpers track. */
  readonly tracked: boolean;
}

/** The driver side of a driver-layer world. */
export interface DriverParts {
  readonly space: BoSpace;
  readonly bo: Bo;
  readonly tracker: BoDirtyTracker;
  readonly resources: readonly BufferResource[];
  readonly config: DirtyConfig;
}

/** Everything an execution changes, for save / restore. */
export interface WorldState {
  machine: MachineState;
  tracker: TrackerState | null;
  reservation: string | null;
  oracle: Uint8Array;
  device: Uint8Array;
}

export class World {
  readonly machine: Machine;
  /** The address space the BO lives in (the device file, or the driver's device space). */
  readonly mapping: Mapping;
  /** Pgoff of BO page 0 in `mapping`. */
  readonly boOffset: number;
  readonly views: readonly View[];
  /** Distinct address spaces of the views, in view order. */
  readonly mms: readonly Mm[];
  readonly driver: DriverParts | null;
  /** Last value written to each byte of the BO (page * PAGE_SIZE + offset). */
  readonly oracle: Uint8Array;
  /** What the device has copied. */
  readonly device: Uint8Array;
  readonly pages: number;
  /** The userspace tracker of a core scenario, or null (the mapping helpers, or a driver). */
  readonly tracker: TrackerName | null;
  /** Pages the recording op tracks (bit p = BO page p); the consumer copies the others every time. */
  readonly trackedMask: number;

  constructor(readonly scenario: Scenario) {
    const o = scenario.options;
    this.pages = o.pages;
    this.tracker = o.driver === null ? trackerOf(o.helper) : null;
    const slots = o.pages * scenario.views.length;
    this.machine = new Machine({
      cpus: o.cpus,
      arch: o.arch,
      pageSize: PAGE_SIZE,
      memoryBytes: PAGE_SIZE * (o.pages + 2),
      tlbEntries: slots,
      tlbWays: slots,
      tlbFlushCeiling: o.flushCeiling ?? undefined,
      walkStopsAtSkippedVma: o.walkStops,
      nestedFlushRule: o.nestedFlushRule,
      walkTakesPteLock: !o.plants.walkWithoutPteLock,
      pteFromSnapshot: o.plants.pteFromSnapshot,
      mkwriteRetryIgnored: o.plants.mkwriteRetryIgnored,
      softDirty: this.tracker === 'soft-dirty',
      mergeDropsSoftDirty: o.plants.mergeDropsSoftDirty,
      scanProtectsUnregistered: o.plants.scanProtectsUnregistered,
      scanWithoutTlbFlush: o.plants.scanWithoutTlbFlush,
    });
    if (o.driver === null) {
      this.mapping = this.tracker === null
        ? this.machine.createMapping(o.pages, { name: 'bo' })
        : this.machine.createMapping(o.pages, { kind: 'shmem', ops: shmemFileOps(), name: 'memfd' });
      this.boOffset = 0;
      this.driver = null;
    } else {
      const config: DirtyConfig = {
        ...DEFAULT_DIRTY_CONFIG,
        mkwriteThresholdPages: o.driver === 'mkwrite' ? 1 : o.pages + 1,
        changeTriggers: o.switchAfter,
        handlersTakeReservation: !o.plants.handlersIgnoreReservation,
        mkwriteFinishesUnderReservation: !o.plants.mkwriteWindow,
        transferClampsWithMax: o.plants.transferMax,
      };
      let space: BoSpace | null = null;
      const ops = boVmOps(() => space!, config, { readback: () => Promise.reject(new Error('the checker has no device writes')) });
      space = new BoSpace(this.machine, this.machine.createMapping(o.pages + 1, { ops, name: 'device', populate: false }));
      if (o.offsets) space.create(PAGE_SIZE); // so the BO starts at pgoff 1
      const bo = space.create(o.pages * PAGE_SIZE);
      const half = o.resources === 2 ? Math.floor(o.pages / 2) : o.pages;
      const resources = [new BufferResource(bo, 0, half * PAGE_SIZE)];
      if (o.resources === 2) resources.push(new BufferResource(bo, half * PAGE_SIZE, (o.pages - half) * PAGE_SIZE));
      for (const r of resources) bo.attach(r);
      this.mapping = space.mapping;
      this.boOffset = bo.offset;
      this.driver = { space, bo, tracker: BoDirtyTracker.add(bo, config), resources, config };
    }
    // Private views first: they sort before the shared ones of the same pgoff in i_mmap, so a walk meets them first.
    const order = scenario.views.map((_, i) => i).sort((a, b) => Number(scenario.views[a]!.shared) - Number(scenario.views[b]!.shared));
    const built: View[] = new Array(scenario.views.length);
    for (const i of order) {
      const v = scenario.views[i]!;
      const mm = this.machine.createMm();
      // A tracker's mapping straddles two PTE tables (page 0 alone in the first), so its walks drop one table lock and take the next.
      const address = this.tracker === null ? undefined : (PAGES_PER_PMD - 1) * PAGE_SIZE;
      const vma = mm.mmap(this.mapping, { pgoff: this.boOffset + v.first, pages: v.pages, shared: v.shared, prot: v.writable ? 'rw' : 'r', address });
      built[i] = { mm, vma, first: v.first, baseVpn: vma.start / PAGE_SIZE, pages: v.pages, tracked: (vma.flags & (VM_SHARED | VM_MAYWRITE)) === (VM_SHARED | VM_MAYWRITE) };
    }
    this.views = built;
    this.mms = built.map((v) => v.mm);
    const tracked = o.unregisteredTail ? o.pages - 1 : o.pages;
    this.trackedMask = (1 << tracked) - 1;
    const v0 = built[0]!;
    if (this.tracker === 'uffd-wp') {
      // The documented start of tracking: register, then protect the range once.
      const uffd = new Userfaultfd(v0.mm);
      uffd.register(v0.baseVpn * PAGE_SIZE, tracked * PAGE_SIZE);
      uffd.writeProtect(v0.baseVpn * PAGE_SIZE, tracked * PAGE_SIZE, true);
    } else if (this.tracker === 'soft-dirty') {
      clearRefsSoftDirty(v0.mm);
    }
    this.oracle = new Uint8Array(o.pages * PAGE_SIZE);
    this.device = new Uint8Array(o.pages * PAGE_SIZE);
  }

  /** Virtual page at which view v maps BO page p. */
  vpnOf(v: View, page: number): number {
    return v.baseVpn + page - v.first;
  }

  /** BO page a step point's (mm, vpn) refers to, or -1. */
  pageAt(mm: Mm, vpn: number): number {
    for (const v of this.views) if (v.mm === mm) return vpn - v.baseVpn + v.first;
    return -1;
  }

  /** Small stable index of an mm id (mm ids grow across worlds; hashes must not see them). */
  mmIndex(mmId: number): number {
    for (let i = 0; i < this.mms.length; i++) if (this.mms[i]!.id === mmId) return i;
    return -1;
  }

  pte(v: View, page: number): number {
    return v.mm.readPte(this.vpnOf(v, page));
  }

  /** Bit p set when BO page p in [first, first + nr) has a dirty PTE in a tracked view. */
  dirtyMask(first: number, nr: number): number {
    let mask = 0;
    for (const v of this.views) {
      if (!v.tracked) continue;
      const lo = Math.max(first, v.first);
      const hi = Math.min(first + nr, v.first + v.pages);
      for (let p = lo; p < hi; p++) if (this.pte(v, p) & PTE_DIRTY) mask |= 1 << p;
    }
    return mask;
  }

  /**
   * Bit p set when BO page p in [first, first + nr), among the tracked
   * pages, is marked written: a dirty PTE in a tracked view (the mapping
   * helpers), the soft-dirty bit as pagemap reports it (the PTE's, or its
   * VMA's), or the uffd-wp bit clear (PAGEMAP_SCAN's PAGE_IS_WRITTEN).
   */
  markedMask(first: number, nr: number): number {
    if (this.tracker === null) return this.dirtyMask(first, nr);
    const v = this.views[0]!;
    const entries = this.tracker === 'soft-dirty' ? readPagemap(v.mm, this.vpnOf(v, first) * PAGE_SIZE, nr) : null;
    let mask = 0;
    for (let p = first; p < first + nr; p++) {
      if (!(this.trackedMask & (1 << p))) continue;
      const pte = this.pte(v, p);
      const marked = entries !== null ? (entries[p - first]! & PM_SOFT_DIRTY) !== 0n : pte !== PTE_UFFD_MARKER && !(pte & PTE_UFFD_WP);
      if (marked) mask |= 1 << p;
    }
    return mask;
  }

  /**
   * A tracker's scan-and-protect of BO pages [first, first + nr) through view
   * 0; returns the pages it reports. soft-dirty reads the bits from pagemap
   * and tells `read` before clear_refs resets them (a consumer that acts
   * early needs them).
   */
  scan(op: Extract<Op, { kind: 'scan' }>, read?: (reported: number) => void): number {
    const v = this.views[0]!;
    const va = this.vpnOf(v, op.first) * PAGE_SIZE;
    if (op.tracker === 'soft-dirty') {
      const reported = this.markedMask(op.first, op.nr);
      read?.(reported);
      // Two system calls: nothing reads and clears soft-dirty bits atomically.
      this.machine.step(Step.BetweenCalls, KERNEL_ACTOR, v.mm, -1);
      clearRefsSoftDirty(v.mm);
      return reported;
    }
    const flags = PM_SCAN_WP_MATCHING | (this.scenario.options.unregisteredTail ? 0 : PM_SCAN_CHECK_WPASYNC);
    const r = pagemapScan(v.mm, { start: va, end: va + op.nr * PAGE_SIZE, flags, vecLen: op.nr, categoryMask: PAGE_IS_WRITTEN, returnMask: PAGE_IS_WRITTEN });
    let reported = 0;
    for (const g of r.regions) for (let a = g.start; a < g.end; a += PAGE_SIZE) reported |= 1 << this.pageAt(v.mm, a / PAGE_SIZE);
    return reported;
  }

  /** munmap one page of a view and mmap it again in place (the VMAs merge back where Linux merges them). */
  remap(op: Extract<Op, { kind: 'remap' }>): void {
    const v = this.views[op.view]!;
    const va = this.vpnOf(v, op.page) * PAGE_SIZE;
    v.mm.munmap(va, PAGE_SIZE);
    v.mm.mmap(this.mapping, { pgoff: this.boOffset + op.page, pages: 1, address: va, shared: true, prot: 'rw' });
  }

  /** Perform a CPU access (may throw AccessBlockedError). */
  write(op: Extract<Op, { kind: 'write' }>): void {
    const v = this.views[op.view]!;
    this.machine.cpus[op.cpu]!.write8(v.mm, this.vpnOf(v, op.page) * PAGE_SIZE + op.offset, op.value);
    this.oracle[op.page * PAGE_SIZE + op.offset] = op.value;
  }

  read(op: Extract<Op, { kind: 'read' }>): void {
    const v = this.views[op.view]!;
    this.machine.cpus[op.cpu]!.read8(v.mm, this.vpnOf(v, op.page) * PAGE_SIZE);
  }

  /** munmap of a whole view (the driver's beforeUnmap harvests PAGETABLE bits first). */
  munmap(view: number): void {
    const v = this.views[view]!;
    v.mm.munmap(v.baseVpn * PAGE_SIZE, v.pages * PAGE_SIZE);
  }

  wp(first: number, nr: number, stats?: HelperStats): void {
    wpSharedMappingRange(this.mapping, this.boOffset + first, nr, { stats });
  }

  clean(op: Extract<Op, { kind: 'clean' }>, bitmap: Bitmap, stats?: HelperStats): void {
    cleanRecordSharedMappingRange(this.mapping, this.boOffset + op.first, op.nr, this.boOffset, bitmap, { start: 0, end: 0 }, { order: op.order, stats });
  }

  /** DMA: copy the BO pages in `mask` from memory into the device copy. */
  copyToDevice(mask: number): void {
    for (let p = 0; p < this.pages; p++) if (mask & (1 << p)) this.device.set(this.mapping.page(this.boOffset + p)!, p * PAGE_SIZE);
  }

  /**
   * Command validation of the resources in `mask` (driver): scan the BO
   * (unless `scan` is false: pinning without a scan), move its bits into each resource, upload
   * the resource's ranges. Returns the BO pages uploaded.
   */
  validate(mask: number, scan: boolean): number {
    const d = this.driver!;
    if (scan) d.tracker.scan();
    let uploaded = 0;
    d.resources.forEach((res, i) => {
      if (!(mask & (1 << i))) return;
      d.tracker.transferToResource(res);
      for (const u of res.takeUploads()) {
        if (u.kind !== 'range') continue;
        d.bo.copyOut(u.offset, this.device, u.offset, u.length);
        for (let p = Math.floor(u.offset / PAGE_SIZE); p * PAGE_SIZE < u.offset + u.length; p++) uploaded |= 1 << p;
      }
    });
    return uploaded;
  }

  /** flush_cache_range over every view (a no-op unless the caches are virtually indexed). */
  flushAllCaches(): void {
    for (const v of this.views) this.machine.flushCacheRange(v.mm, v.baseVpn * PAGE_SIZE, (v.baseVpn + v.pages) * PAGE_SIZE);
  }

  /** Copy everything an execution can change into `into` (reusing it) or a new object. */
  save(into?: WorldState): WorldState {
    const d = this.driver;
    const s = into ?? {
      machine: this.machine.saveState(), tracker: d?.tracker.saveState() ?? null, reservation: null,
      oracle: new Uint8Array(this.oracle.length), device: new Uint8Array(this.device.length),
    };
    if (into !== undefined) {
      this.machine.saveState(s.machine);
      if (d !== null) d.tracker.saveState(s.tracker!);
    }
    s.reservation = d?.bo.reservation.heldBy ?? null;
    s.oracle.set(this.oracle);
    s.device.set(this.device);
    return s;
  }

  restore(s: WorldState): void {
    this.machine.restoreState(s.machine);
    const d = this.driver;
    if (d !== null) {
      d.tracker.restoreState(s.tracker!);
      d.bo.reservation.restoreHolder(s.reservation);
    }
    this.oracle.set(s.oracle);
    this.device.set(s.device);
  }
}
