/**
 * Known bugs as checker scenarios (`vgpu-dirty check --bug ID [--fixed]`):
 * every behaviour-level entry of the known-bug list of the mapping helpers,
 * the userspace trackers and vmwgfx, and the races this project found in its
 * own driver layer, each with the scenario that shows it and the same
 * scenario with the fix. Entries the
 * model cannot express say why. docs/fidelity.md has the table and the
 * verdicts; test/check/bugs.test.ts runs every pair.
 */
import { NO_PLANTS, type Plants, type ScenarioOptions } from './scenario.js';

export interface BugEntry {
  readonly id: string;
  readonly title: string;
  /** 'variants': a buggy and a fixed scenario; 'not-applicable': see `why`. */
  readonly kind: 'variants' | 'not-applicable';
  readonly why?: string;
  readonly buggy?: Partial<ScenarioOptions>;
  readonly fixed?: Partial<ScenarioOptions>;
  /** Preemption bound the pair is run at (default 2). */
  readonly bound?: number;
}

const plant = (p: Partial<Plants>): Partial<ScenarioOptions> => ({ plants: { ...NO_PLANTS, ...p } });

export const BUGS: readonly BugEntry[] = [
  {
    id: 'A1', title: 'deferred TLB flush vs cleaned PTE: recorded pages consumed before the flush', kind: 'variants',
    buggy: { helper: 'clean-record', consumer: 'before-flush' },
    fixed: { helper: 'clean-record', consumer: 'after-return' },
  },
  {
    id: 'A2', title: 'concurrent wp walkers: the later one flushes only its own (empty) window', kind: 'variants',
    buggy: { helper: 'wp-clean', nestedWp: true, nestedFlushRule: false },
    fixed: { helper: 'wp-clean', nestedWp: true, nestedFlushRule: true },
  },
  {
    id: 'A3', title: 'walk_pte_range without the PTE lock: a fault refills a slot the walker holds cleared', kind: 'variants',
    buggy: { helper: 'wp-clean', writes: 1, ...plant({ walkWithoutPteLock: true }) },
    fixed: { helper: 'wp-clean', writes: 1 },
  },
  {
    id: 'A4', title: 'pte_entry walkers split huge PMDs', kind: 'not-applicable',
    why: 'the model\'s walker never splits a huge leaf (it reports it to hugeEntry and goes on, test/core/helpers.test.ts), and the driver never maps a BO with huge entries (C8): with no writable or dirty huge entry there is nothing a split could lose',
  },
  { id: 'A5', title: 'build break without huge PUD support', kind: 'not-applicable', why: 'a compile-time bug; no behaviour' },
  {
    id: 'A6', title: 'walk_page_mapping stops at a VMA test_walk skips', kind: 'variants',
    buggy: { helper: 'clean-record', privateVma: true, walkStops: true },
    fixed: { helper: 'clean-record', privateVma: true, walkStops: false },
  },
  { id: 'A7', title: 'kernel-doc markup', kind: 'not-applicable', why: 'documentation changes only; no behaviour to model' },
  {
    id: 'B1', title: 'PAGEMAP_SCAN WP_MATCHING protects VMAs not registered with userfaultfd', kind: 'variants',
    buggy: { helper: 'uffd-wp', unregisteredTail: true, ...plant({ scanProtectsUnregistered: true }) },
    fixed: { helper: 'uffd-wp', unregisteredTail: true },
  },
  {
    id: 'B2', title: 'PAGEMAP_SCAN: one notifier bracket across lock drops', kind: 'not-applicable',
    why: 'the model has the fixed form only: PAGEMAP_SCAN opens one notifier bracket per pass of its loop, covering that pass (src/core/pagemap-scan.ts), and the mapping helpers one per VMA inside the walk; the model has no mmap lock that a pass drops and retakes, so the buggy form has nothing to race with',
  },
  {
    id: 'B3', title: 'new PTE built from the snapshot taken before modify_prot_start', kind: 'variants',
    buggy: { helper: 'wp-clean', reads: true, writes: 1, ...plant({ pteFromSnapshot: true }) },
    fixed: { helper: 'wp-clean', reads: true, writes: 1 },
  },
  {
    id: 'B4', title: 'lazy-MMU batching still open at the TLB flush', kind: 'not-applicable',
    why: 'the model commits every PTE store at once; there is no lazy-MMU batching to leave open',
  },
  {
    id: 'B5', title: 'soft-dirty after VMA merges: a range unmapped and mapped again must read dirty', kind: 'variants',
    buggy: { helper: 'soft-dirty', remap: true, ...plant({ mergeDropsSoftDirty: true }) },
    fixed: { helper: 'soft-dirty', remap: true },
    // The soft-dirty scan loses writes between its two system calls with one preemption (docs/fidelity.md); the merge needs none.
    bound: 0,
  },
  {
    id: 'C1', title: 'transfer to a resource clamps with max instead of min', kind: 'variants',
    buggy: { driver: 'pagetable', resources: 2, ...plant({ transferMax: true }) },
    fixed: { driver: 'pagetable', resources: 2 },
  },
  {
    id: 'C2', title: 'fault passes page + PAGE_SIZE (bytes) as a page end to vmw_resources_clean', kind: 'not-applicable',
    why: 'costs extra readbacks only; the model\'s read coherence tracks the exact byte ranges the device changed per BO (deviceNewer), not per-resource res_dirty, so there is no such window and no data to lose',
  },
  {
    id: 'C3', title: 'guest_memory_size assigned instead of guest_memory_dirty', kind: 'not-applicable',
    why: 'the model has no BO eviction from MOB memory; the full upload after losing the device copy is the resync on reconnect (markAllDirty), tested end to end',
  },
  {
    id: 'C4', title: 'dirty_alloc failure leaks the device object', kind: 'not-applicable',
    why: 'no fallible allocation on the validation path in the model, and device-object lifetime is not tied to the tracker',
  },
  {
    id: 'C5', title: 'subresource box union keeps the old extent when lowering the start', kind: 'not-applicable',
    why: 'the driver\'s surfaces merge dirty boxes into their bounding box, so the flaw cannot occur (test/driver/surface.test.ts writes the example of a row\'s second half followed by a later row\'s first half and checks both are covered); the checker\'s scenarios use buffer resources',
  },
  {
    id: 'C6', title: 'tracker refcount: unsigned int, then a kref with a cast release', kind: 'not-applicable',
    why: 'undefined behaviour in C with no observable effect in a correct build; add/release balance is unit-tested (test/driver/tracker.test.ts)',
  },
  {
    id: 'C7', title: 'RETRY from page_mkwrite treated as success by core mm', kind: 'variants',
    buggy: { driver: 'mkwrite', offsets: true, reads: true, ...plant({ mkwriteRetryIgnored: true }) },
    fixed: { driver: 'mkwrite', offsets: true, reads: true },
  },
  {
    id: 'C8', title: 'huge entries of a tracked BO must never be writable', kind: 'not-applicable',
    why: 'the driver has no huge fault (TTM removed them; every BO PTE is a 4 KiB entry), so the fixed form is the only one; the helpers\' handling of a writable huge entry (skipped and reported, never recorded) is unit-tested',
  },
  {
    id: 'C9', title: 'TTM COW check: writable private mappings and RO→W mprotect of a BO', kind: 'not-applicable',
    why: 'the driver now refuses both (vm-ops mmap and mprotect hooks, test/driver/vm-ops.test.ts); writes through a private mapping go to an anonymous copy, which is not BO data, so the checker has nothing to compare; the related walk stop is A6',
  },
  {
    id: 'C10', title: 'resource pinning transfers dirty bits without a scan (MKWRITE)', kind: 'variants',
    buggy: { driver: 'mkwrite', ...plant({ pinWithoutScan: true }) },
    fixed: { driver: 'mkwrite' },
  },
  {
    id: 'reservation', title: 'fault handlers that ignore the BO reservation during a method switch', kind: 'variants',
    buggy: { driver: 'pagetable', switchAfter: 0, offsets: true, rounds: 2, ...plant({ handlersIgnoreReservation: true }) },
    fixed: { driver: 'pagetable', switchAfter: 0, offsets: true, rounds: 2 },
  },
  {
    id: 'mkwrite-window', title: 'a scan between page_mkwrite and the PTE becoming writable', kind: 'variants',
    buggy: { driver: 'mkwrite', offsets: true, ...plant({ mkwriteWindow: true }) },
    fixed: { driver: 'mkwrite', offsets: true },
  },
  {
    id: 'strict-order', title: 'page_mkclean order on virtually indexed caches: a write between the cache flush and the clear', kind: 'variants',
    buggy: { arch: 'vivt', helper: 'strict' },
    fixed: { arch: 'vivt', helper: 'strict-tlb-first' },
  },
];

export const BUG_IDS: readonly string[] = BUGS.map((b) => b.id);

/** The entry for `id` (case-insensitive), or undefined. */
export function findBug(id: string): BugEntry | undefined {
  return BUGS.find((b) => b.id.toLowerCase() === id.toLowerCase());
}
