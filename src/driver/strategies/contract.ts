import type { Bitmap, MappingKind, Vma } from '../../core/index.js';
import type { Bo } from '../bo.js';
import type { DirtyConfig } from '../config.js';

/**
 * The contract between a buffer object and its dirty tracker: what the
 * driver tells a tracker, and what the tracker gives back. Every built-in
 * strategy (docs/strategies.md) is written against this and nothing else;
 * a strategy loaded from a module (`--strategy ./my-tracker.js`) gets
 * exactly the same calls.
 *
 * BO pages are indices [0, bo.pages); a range is [from, to).
 *
 * Who calls what, and when:
 *  - mapWritable: the fault handler, holding the BO's reservation, for the
 *    first page it maps (and the pages it prefaults with it);
 *  - mkwrite: page_mkwrite, holding the reservation, before a read-only PTE
 *    of a shared mapping becomes writable;
 *  - scan: once per writeback round (validation), before any dirty page
 *    moves into resources; must leave every page written before it began
 *    either in the tracker's record or still findable by the next scan;
 *  - mapped: a process mapped the BO through Driver.mmap;
 *  - beforeUnmap: a process unmaps BO pages (munmap) or the driver zaps
 *    every CPU mapping of them (the device changed them): the PTEs go away
 *    right after, so keep what only they know;
 *  - takeDirty / clearDirty: resource transfer — move the record of a
 *    resource's pages into it, or drop it after a full upload;
 *  - markDirty: the device lost its copy (resync) or a caller says so.
 *
 * scan and beforeUnmap change PTEs while CPUs may fault: they must hold
 * bo.reservation while they do (bo.reservation.hold), which the fault and
 * mkwrite handlers take, so no fault acts on a record half-way through a
 * change. The other calls only touch the tracker's own record.
 */
export interface DirtyTracker {
  /** The method in use now ('pagetable', 'mkwrite', 'uffd-wp', ...), for reports and the dashboard. */
  readonly method: string;
  /** Method switches so far. */
  readonly switches: number;
  /** May the PTEs a fault installs for BO page `page` be writable? false: the first write calls mkwrite. */
  mapWritable(page: number): boolean;
  /** BO page `page` is about to become writable. */
  mkwrite(page: number): void;
  /** Harvest what the CPUs wrote since the last scan into the record. */
  scan(): ScanReport;
  /** The CPU mappings of BO pages [from, to) are about to be zapped or unmapped. */
  beforeUnmap(from: number, to: number): void;
  /**
   * Move the recorded dirty pages of [from, to) out of the record: emit(s, e)
   * for each run of pages (in order); returns the pages moved.
   */
  takeDirty(from: number, to: number, emit: (start: number, end: number) => void): number;
  /** Forget the record of [from, to): a full upload sent those pages anyway. */
  clearDirty(from: number, to: number): void;
  /** Record [from, to) as dirty. */
  markDirty(from: number, to: number): void;
  /**
   * Set in `out` every page the device lacks as far as the tracker knows now,
   * including what only the PTEs hold until the next scan. Changes nothing.
   */
  peekDirty(out: Bitmap): void;
  /** A process mapped pages of the BO through Driver.mmap (vma may map more than this BO). */
  mapped?(vma: Vma): void;
  /** The BO is going away (after its mappings are gone): release what the tracker holds. */
  dispose?(): void;
}

/** What one scan did. */
export interface ScanReport {
  /** Pages the scan found written (strategy-specific: PTEs cleaned, pages reported, ...). */
  found: number;
  /** The method this scan switched to, or null. */
  switchedTo: string | null;
}

/** What a tracker is given besides its BO. */
export interface TrackerEnv {
  /** The driver's tunables (the vmwgfx thresholds and the documented bug switches). */
  readonly config: Readonly<DirtyConfig>;
  /**
   * One object per driver and key, made by `make` on first use: for state
   * the trackers of one driver share. Keys are per strategy; prefix yours.
   * State that every driver of a machine must share (soft-dirty's harvest:
   * clear_refs clears the bits of all of them) is keyed by bo.space.machine instead.
   */
  shared<T>(key: string, make: () => T): T;
}

/**
 * A dirty-tracking strategy: a name, what it needs of the BO memory and the
 * machine, and a tracker per BO. A module given to `--strategy` exports one
 * as its default export (or as `strategy`).
 */
export interface DirtyStrategy {
  readonly name: string;
  /** One line for --help and reports. */
  readonly description?: string;
  /**
   * What BO memory must be: 'device' (a PFN map, as TTM maps BOs; default)
   * or 'shmem' (page cache, as a memfd: what userfaultfd and soft-dirty need).
   */
  readonly backing?: MappingKind;
  /** Machine features the strategy needs (soft-dirty: MachineOptions.softDirty). */
  readonly machine?: { readonly softDirty?: boolean };
  /** Can track BOs in real memory (`--memory real`; the BO's store has `wp`). Default false. */
  readonly realMemory?: boolean;
  /** The tracker of one BO, created when the BO is. */
  createTracker(bo: Bo, env: TrackerEnv): DirtyTracker;
}
