/**
 * What the explorer runs: a small, fixed program per actor. CPU actors write
 * (and optionally read) bytes of one buffer object (BO) through a process's
 * mapping; kernel actors either call the dirty helpers and a consumer that
 * copies recorded pages into a device copy (layer 'core'), or validate
 * resources through the vmwgfx-style driver — tracker scan, transfer to the
 * resources, upload of their ranges (layer 'driver'). The explorer chooses
 * only the interleaving, never the program.
 *
 * Every write stores a distinct value into byte `cpu` of its page, so
 * (a) the last value written to each byte identifies the write (the oracle),
 * and (b) all data ever written lives in bytes [0, cpus) < 4 of a page: the
 * first 32-bit word of a page captures its whole content (state hashing
 * relies on this).
 */
import type { HelperOrder } from '../core/dirty-helpers.js';
import { ARCH_NAMES, type ArchName } from '../core/machine.js';

export const HELPER_NAMES = ['clean-record', 'strict', 'strict-tlb-first', 'wp-clean', 'uffd-wp', 'soft-dirty'] as const;
/**
 * clean-record: deferred flush (kernel); strict: page_mkclean's per-PTE
 * order (cache flush, then clear + TLB flush, then a clean read-only PTE);
 * strict-tlb-first: the same with the TLB flushed before the
 * cache; wp-clean: wp then clean-record (vmwgfx's snapshot pair).
 *
 * The two userspace trackers scan-and-protect one process's memory (a memfd
 * mapped shared, tracked from the start): uffd-wp: PAGEMAP_SCAN with
 * PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC and category PAGE_IS_WRITTEN
 * on a range registered for async userfaultfd write-protect (reports the
 * written pages and re-protects them in one walk); soft-dirty: read the
 * soft-dirty bits from /proc/PID/pagemap, then write 4 to clear_refs.
 */
export type HelperName = (typeof HELPER_NAMES)[number];

/** The userspace trackers among the helpers: one process, one mapping, a memfd instead of a device file. */
export type TrackerName = 'uffd-wp' | 'soft-dirty';
export function trackerOf(helper: HelperName): TrackerName | null {
  return helper === 'uffd-wp' || helper === 'soft-dirty' ? helper : null;
}

export const DRIVER_METHODS = ['pagetable', 'mkwrite'] as const;
/** The tracker's initial method in a driver scenario. */
export type DriverMethod = (typeof DRIVER_METHODS)[number];

export const CONSUMER_TIMINGS = ['after-return', 'before-flush'] as const;
/**
 * after-return: the consumer copies recorded pages once the clean-record call
 * has returned (the documented contract). before-flush: it also copies the
 * pages recorded so far at each post_vma, before the deferred TLB flush (the
 * order that loses a write through a stale TLB entry: the page is copied
 * before the flush that ends such writes).
 */
export type ConsumerTiming = (typeof CONSUMER_TIMINGS)[number];

/** Machine and driver switches that re-create known bugs (bugs.ts); all false is the fixed model. */
export interface Plants {
  /** walk_pte_range without the PTE lock: a fault can refill a slot the walker holds cleared. */
  walkWithoutPteLock: boolean;
  /** New PTE built from the snapshot, not from modify_prot_start: A/D bits set in between are lost. */
  pteFromSnapshot: boolean;
  /** A RETRY from pfn_mkwrite finishes the fault anyway: the PTE becomes writable with nothing recorded. */
  mkwriteRetryIgnored: boolean;
  /** The fault handlers ignore the BO reservation (the method-switch race). */
  handlersIgnoreReservation: boolean;
  /** vmwgfx's mkwrite order: the reservation is released before the PTE becomes writable. */
  mkwriteWindow: boolean;
  /** Transfer to a resource clamps with max instead of min, clearing bits beyond the resource. */
  transferMax: boolean;
  /** Resource validation transfers the BO's bits without scanning first (MKWRITE pinning). */
  pinWithoutScan: boolean;
  /** A VMA merge drops VM_SOFTDIRTY of the VMA merged in (MachineOptions.mergeDropsSoftDirty). */
  mergeDropsSoftDirty: boolean;
  /** PAGEMAP_SCAN's WP_MATCHING protects unregistered VMAs (MachineOptions.scanProtectsUnregistered). */
  scanProtectsUnregistered: boolean;
  /** PAGEMAP_SCAN and clear_refs protect without their TLB flush (MachineOptions.scanWithoutTlbFlush). */
  scanWithoutTlbFlush: boolean;
}

export const PLANT_NAMES = [
  'walkWithoutPteLock', 'pteFromSnapshot', 'mkwriteRetryIgnored', 'handlersIgnoreReservation', 'mkwriteWindow', 'transferMax', 'pinWithoutScan',
  'mergeDropsSoftDirty', 'scanProtectsUnregistered', 'scanWithoutTlbFlush',
] as const satisfies ReadonlyArray<keyof Plants>;

export const NO_PLANTS: Readonly<Plants> = {
  walkWithoutPteLock: false, pteFromSnapshot: false, mkwriteRetryIgnored: false, handlersIgnoreReservation: false,
  mkwriteWindow: false, transferMax: false, pinWithoutScan: false, mergeDropsSoftDirty: false, scanProtectsUnregistered: false,
  scanWithoutTlbFlush: false,
};

export interface ScenarioOptions {
  arch: ArchName;
  /** Core layer: the helper kernel0 calls. Ignored with a driver. */
  helper: HelperName;
  /** Driver layer, with the tracker's initial method; null for the core layer. */
  driver: DriverMethod | null;
  cpus: number;
  pages: number;
  /** Writes per CPU. */
  writes: number;
  /** Rounds of the main kernel actor (core: [wp,] clean-record, consume; driver: validate). */
  rounds: number;
  consumer: ConsumerTiming;
  /** Core: a second kernel actor write-protects pgoffs [1, pages) concurrently (two deferred flushes pending at once). */
  nestedWp: boolean;
  /** Core: a second kernel actor runs clean-record with its own bitmap and consumer concurrently. */
  nestedClean: boolean;
  /** Machine option: flush the whole range when another deferred flush is pending. */
  nestedFlushRule: boolean;
  /** Core: another process maps the BO private read-only, sorting before the shared VMA in i_mmap. */
  privateVma: boolean;
  /** Machine option: kernel-faithful walk_page_mapping that stops at a skipped VMA. */
  walkStops: boolean;
  /** Each CPU reads its page before writing it (x86: a writable clean TLB entry, then a locked D-bit set). */
  reads: boolean;
  /**
   * A second process maps the BO from its second page (pgoff 1) at another
   * address, and odd CPUs write through it; with a driver, the BO also sits
   * at a non-zero offset of the device address space.
   */
  offsets: boolean;
  /** Machine tlbFlushCeiling: range flushes above this many pages flush the whole mm (null: the default, 33). */
  flushCeiling: number | null;
  /** Driver: a method switch needs more than this many consecutive votes (changeTriggers). */
  switchAfter: number;
  /** Driver: resources over the BO (2: pages split between them, validations of the first only). */
  resources: number;
  /** Driver: the last CPU writes through its own process's mapping and then unmaps it. */
  munmap: boolean;
  /**
   * soft-dirty: the last CPU, after its writes, unmaps the page it wrote last
   * and maps it again in place (the new VMA merges with its neighbour).
   */
  remap: boolean;
  /**
   * uffd-wp: the last page is not registered with userfaultfd (its own VMA);
   * the scan then goes without PM_SCAN_CHECK_WPASYNC, which would refuse the
   * range, and the consumer copies that untracked page every time.
   */
  unregisteredTail: boolean;
  /** Invariants not checked (e.g. per-call guarantee-b with --nested-clean). */
  ignore: readonly InvariantName[];
  plants: Plants;
}

export type InvariantName = 'guarantee-a' | 'guarantee-b' | 'stale-writable-tlb' | 'lost-write' | 'uffd-wp-writable';
export const INVARIANT_NAMES: readonly InvariantName[] = ['guarantee-a', 'guarantee-b', 'stale-writable-tlb', 'lost-write', 'uffd-wp-writable'];

/** The invariants a scenario checks: all but those it ignores, and uffd-wp-writable only where userfaultfd is in play. */
export function checkedInvariants(o: Readonly<ScenarioOptions>): InvariantName[] {
  return INVARIANT_NAMES.filter((n) => !o.ignore.includes(n) && (n !== 'uffd-wp-writable' || (o.driver === null && o.helper === 'uffd-wp')));
}

export const DEFAULT_SCENARIO: Readonly<ScenarioOptions> = {
  arch: 'x86',
  helper: 'clean-record',
  driver: null,
  cpus: 2,
  pages: 2,
  writes: 2,
  rounds: 1,
  consumer: 'after-return',
  nestedWp: false,
  nestedClean: false,
  nestedFlushRule: true,
  privateVma: false,
  walkStops: false,
  reads: false,
  offsets: false,
  flushCeiling: null,
  switchAfter: 2,
  resources: 1,
  munmap: false,
  remap: false,
  unregisteredTail: false,
  ignore: [],
  plants: NO_PLANTS,
};

/** Inclusive limits of the numeric options; larger programs explode combinatorially. */
export const SCENARIO_LIMITS = {
  cpus: { min: 1, max: 4 },
  pages: { min: 1, max: 8 },
  writes: { min: 1, max: 4 },
  rounds: { min: 1, max: 3 },
  switchAfter: { min: 0, max: 3 },
  resources: { min: 1, max: 2 },
} as const;

export type Op =
  | { readonly kind: 'write'; readonly cpu: number; readonly view: number; readonly page: number; readonly offset: number; readonly value: number }
  | { readonly kind: 'read'; readonly cpu: number; readonly view: number; readonly page: number }
  | { readonly kind: 'munmap'; readonly view: number }
  | { readonly kind: 'remap'; readonly view: number; readonly page: number }
  | { readonly kind: 'wp'; readonly first: number; readonly nr: number }
  | { readonly kind: 'clean'; readonly first: number; readonly nr: number; readonly order: HelperOrder }
  | { readonly kind: 'scan'; readonly tracker: TrackerName; readonly first: number; readonly nr: number }
  | { readonly kind: 'consume' }
  | { readonly kind: 'validate'; readonly resources: number; readonly scan: boolean };

export interface Actor {
  /** Index in Scenario.actors; CPU actors first, so actor i < cpus is CPU i. */
  readonly index: number;
  /** 'cpu0', 'kernel0', ... */
  readonly label: string;
  /** Short token used in schedules: '0', '1', ... for CPUs, 'k0', 'k1' for kernel actors. */
  readonly token: string;
  readonly ops: readonly Op[];
}

/** A process's window onto the BO: BO pages [first, first + pages). */
export interface ViewSpec {
  readonly first: number;
  readonly pages: number;
  readonly shared: boolean;
  readonly writable: boolean;
}

export interface Scenario {
  readonly options: Readonly<ScenarioOptions>;
  readonly actors: readonly Actor[];
  /** Mappings of the BO, one process each; view 0 is the shared one every CPU can write through. */
  readonly views: readonly ViewSpec[];
  /** The quiescent sync run after every actor finished (then the device copy is compared with the oracle). */
  readonly finalSync: readonly Op[];
}

/** A scenario option outside its domain. */
export class ScenarioError extends Error {
  override readonly name = 'ScenarioError';
}

function views(o: ScenarioOptions): ViewSpec[] {
  const out: ViewSpec[] = [{ first: 0, pages: o.pages, shared: true, writable: true }];
  if (o.offsets) out.push({ first: 1, pages: o.pages - 1, shared: true, writable: true });
  if (o.munmap) out.push({ first: 0, pages: o.pages, shared: true, writable: true });
  if (o.privateVma) out.push({ first: 0, pages: o.pages, shared: false, writable: false });
  return out;
}

/** Which view CPU c writes through: the munmap CPU its own; odd CPUs the offset view; else view 0. */
function viewOf(o: ScenarioOptions, vs: readonly ViewSpec[], cpu: number): number {
  if (o.munmap && cpu === o.cpus - 1) return vs.findIndex((v, i) => i > 0 && v.first === 0 && v.shared);
  if (o.offsets && cpu % 2 === 1) return 1;
  return 0;
}

/**
 * BO page of CPU c's k-th write: each CPU writes a page twice before moving
 * on, so stale TLB entries get used; inside the CPU's view.
 */
function writeTarget(o: ScenarioOptions, v: ViewSpec, cpu: number, k: number): number {
  // vivt: the model's per-CPU caches are not coherent with each other, so a page has one writer.
  const i = o.arch === 'vivt' ? cpu : cpu + (k >> 1);
  return v.first + (i % v.pages);
}

/** The op that reports and re-marks pages: a clean-record call, or a tracker's scan-and-protect. */
function recordingOp(o: ScenarioOptions, first: number, nr: number): Op {
  const tracker = trackerOf(o.helper);
  if (tracker !== null) return { kind: 'scan', tracker, first, nr };
  const order: HelperOrder = o.helper === 'strict' || o.helper === 'strict-tlb-first' ? o.helper : 'deferred';
  return { kind: 'clean', first, nr, order };
}

function helperRound(o: ScenarioOptions): Op[] {
  const record = recordingOp(o, 0, o.pages);
  return o.helper === 'wp-clean' ? [{ kind: 'wp', first: 0, nr: o.pages }, record, { kind: 'consume' }] : [record, { kind: 'consume' }];
}

/** Resources kernel0 validates each round: all, or with two resources only the first (so a transfer to it must leave the second's bits). */
function roundResources(o: ScenarioOptions): number {
  return o.resources === 2 ? 1 : (1 << o.resources) - 1;
}

function check(o: ScenarioOptions): void {
  if (!ARCH_NAMES.includes(o.arch)) throw new ScenarioError(`arch must be one of ${ARCH_NAMES.join(', ')}, got '${o.arch}'`);
  if (!HELPER_NAMES.includes(o.helper)) throw new ScenarioError(`helper must be one of ${HELPER_NAMES.join(', ')}, got '${o.helper}'`);
  if (o.driver !== null && !DRIVER_METHODS.includes(o.driver)) throw new ScenarioError(`driver must be one of ${DRIVER_METHODS.join(', ')}, got '${o.driver}'`);
  if (!CONSUMER_TIMINGS.includes(o.consumer)) throw new ScenarioError(`consumer must be one of ${CONSUMER_TIMINGS.join(', ')}, got '${o.consumer}'`);
  for (const [name, { min, max }] of Object.entries(SCENARIO_LIMITS)) {
    const v = o[name as keyof typeof SCENARIO_LIMITS];
    if (!Number.isInteger(v) || v < min || v > max) throw new ScenarioError(`${name} must be an integer in [${min}, ${max}], got ${v}`);
  }
  if (o.flushCeiling !== null && (!Number.isInteger(o.flushCeiling) || o.flushCeiling < 0 || o.flushCeiling > 64)) {
    throw new ScenarioError(`flushCeiling must be an integer in [0, 64], got ${o.flushCeiling}`);
  }
  for (const name of o.ignore) if (!INVARIANT_NAMES.includes(name)) throw new ScenarioError(`unknown invariant '${name}' (${INVARIANT_NAMES.join(', ')})`);
  if (o.arch === 'vivt' && o.pages < o.cpus) {
    throw new ScenarioError(`vivt needs pages >= cpus (${o.pages} < ${o.cpus}): the model's per-CPU caches are not coherent, so each page gets one writer`);
  }
  if (o.offsets && o.pages < 2) throw new ScenarioError('offsets needs at least 2 pages (the second mapping starts at page 1)');
  const driverOnly: Array<[boolean, string]> = [[o.munmap, 'munmap'], [o.resources !== 1, 'resources']];
  for (const [set, name] of driverOnly) if (set && o.driver === null) throw new ScenarioError(`${name} needs a driver scenario`);
  const coreOnly: Array<[boolean, string]> = [[o.nestedWp, 'nestedWp'], [o.nestedClean, 'nestedClean'], [o.privateVma, 'privateVma'], [o.consumer !== 'after-return', 'consumer']];
  for (const [set, name] of coreOnly) if (set && o.driver !== null) throw new ScenarioError(`${name} is a core scenario option (no driver)`);
  if (o.resources === 2 && o.pages < 2) throw new ScenarioError('two resources need at least 2 pages');
  const tracker = trackerOf(o.helper);
  if (tracker !== null && o.driver === null) {
    if (o.arch === 'vivt') throw new ScenarioError(`${o.helper} exists only on architectures with physically indexed caches (Linux has no soft-dirty or uffd-wp on virtually indexed ones); use x86 or sw-dirty`);
    const oneMapping: Array<[boolean, string]> = [[o.offsets, 'offsets'], [o.privateVma, 'privateVma'], [o.walkStops, 'walkStops'], [o.nestedWp, 'nestedWp']];
    for (const [set, name] of oneMapping) if (set) throw new ScenarioError(`${name} does not apply to ${o.helper}: it tracks one process's single mapping, with no wp_shared_mapping_range walk`);
  }
  if (o.remap && (tracker !== 'soft-dirty' || o.driver !== null)) throw new ScenarioError('remap needs --helper soft-dirty');
  if (o.unregisteredTail && (tracker !== 'uffd-wp' || o.driver !== null)) throw new ScenarioError('unregisteredTail needs --helper uffd-wp');
  if (o.unregisteredTail && o.pages < 2) throw new ScenarioError('unregisteredTail needs at least 2 pages (the last one is not registered)');
  if (o.munmap && o.cpus < 2) throw new ScenarioError('munmap needs 2 CPUs (the last one unmaps its mapping)');
}

export function buildScenario(partial: Partial<ScenarioOptions> = {}): Scenario {
  const o: ScenarioOptions = { ...DEFAULT_SCENARIO, ...partial, plants: { ...NO_PLANTS, ...partial.plants } };
  check(o);
  const vs = views(o);
  const actors: Actor[] = [];
  for (let c = 0; c < o.cpus; c++) {
    const view = viewOf(o, vs, c);
    const ops: Op[] = [];
    for (let k = 0; k < o.writes; k++) {
      const page = writeTarget(o, vs[view]!, c, k);
      if (o.reads) ops.push({ kind: 'read', cpu: c, view, page });
      ops.push({ kind: 'write', cpu: c, view, page, offset: c, value: 1 + c * o.writes + k });
    }
    if (o.munmap && c === o.cpus - 1) ops.push({ kind: 'munmap', view });
    if (o.remap && c === o.cpus - 1) ops.push({ kind: 'remap', view, page: writeTarget(o, vs[view]!, c, o.writes - 1) });
    actors.push({ index: c, label: `cpu${c}`, token: String(c), ops });
  }
  const main: Op[] = [];
  for (let r = 0; r < o.rounds; r++) {
    if (o.driver !== null) main.push({ kind: 'validate', resources: roundResources(o), scan: !o.plants.pinWithoutScan });
    else main.push(...helperRound(o));
  }
  actors.push({ index: actors.length, label: 'kernel0', token: 'k0', ops: main });
  if (o.nestedWp) {
    const first = o.pages > 1 ? 1 : 0;
    actors.push({ index: actors.length, label: 'kernel1', token: 'k1', ops: [{ kind: 'wp', first, nr: o.pages - first }] });
  }
  if (o.nestedClean) {
    const nested: Op = trackerOf(o.helper) !== null ? recordingOp(o, 0, o.pages) : { kind: 'clean', first: 0, nr: o.pages, order: 'deferred' };
    actors.push({ index: actors.length, label: `kernel${actors.length - o.cpus}`, token: `k${actors.length - o.cpus}`, ops: [nested, { kind: 'consume' }] });
  }
  const finalSync: Op[] = o.driver !== null ? [{ kind: 'validate', resources: (1 << o.resources) - 1, scan: true }] : helperRound(o);
  return { options: o, actors, views: vs, finalSync };
}

export function isKernelOp(op: Op): boolean {
  return op.kind !== 'write' && op.kind !== 'read';
}

/** Ops that walk page tables (take the i_mmap lock and PTE locks): they may not start while a walker holds a PTE lock. */
export function isWalkingOp(op: Op): boolean {
  return op.kind === 'wp' || op.kind === 'clean' || op.kind === 'scan' || op.kind === 'validate' || op.kind === 'munmap' || op.kind === 'remap';
}

/** Ops that report pages and re-mark them (guarantees (a) and (b) are checked when they return). */
export function isRecordingOp(op: Op): op is Extract<Op, { kind: 'clean' | 'scan' }> {
  return op.kind === 'clean' || op.kind === 'scan';
}

/** Ops that take the BO reservation (driver): they may not start while a suspended op holds it. */
export function takesReservation(op: Op): boolean {
  return op.kind === 'validate' || op.kind === 'munmap';
}

const hex = (v: number): string => `0x${v.toString(16).padStart(2, '0')}`;

export function describeOp(op: Op): string {
  switch (op.kind) {
    case 'write':
      return `write ${hex(op.value)} to pgoff ${op.page} byte ${op.offset}${op.view > 0 ? ` via mapping ${op.view}` : ''}`;
    case 'read':
      return `read pgoff ${op.page}${op.view > 0 ? ` via mapping ${op.view}` : ''}`;
    case 'munmap':
      return `munmap of mapping ${op.view}`;
    case 'remap':
      return `munmap pgoff ${op.page}${op.view > 0 ? ` of mapping ${op.view}` : ''} and mmap it again in place`;
    case 'wp':
      return `wp_shared_mapping_range [${op.first},${op.first + op.nr})`;
    case 'clean':
      return `${op.order === 'deferred' ? '' : `${op.order} `}clean_record_shared_mapping_range [${op.first},${op.first + op.nr})`;
    case 'scan':
      return op.tracker === 'uffd-wp'
        ? `PAGEMAP_SCAN [${op.first},${op.first + op.nr}) written pages, WP_MATCHING`
        : `read pagemap soft-dirty bits [${op.first},${op.first + op.nr}), then clear_refs 4`;
    case 'consume':
      return 'consumer copies recorded pages to the device';
    case 'validate':
      return `validate resource${op.resources === 3 ? 's 0,1' : ` ${op.resources === 1 ? 0 : 1}`}: ${op.scan ? 'scan, ' : 'no scan (pin), '}transfer, upload`;
  }
}

/** The options as CLI flags (for replay commands), omitting defaults. */
export function scenarioFlags(o: Readonly<ScenarioOptions>): string[] {
  const d = DEFAULT_SCENARIO;
  const out = ['--arch', o.arch];
  if (o.driver !== null) out.push('--driver', o.driver);
  else out.push('--helper', o.helper);
  for (const k of ['cpus', 'pages', 'writes', 'rounds'] as const) if (o[k] !== d[k]) out.push(`--${k}`, String(o[k]));
  if (o.consumer !== d.consumer) out.push('--consumer', o.consumer);
  const flags: Array<[boolean, string]> = [
    [o.nestedWp, '--nested-wp'], [o.nestedClean, '--nested-clean'], [!o.nestedFlushRule, '--no-nested-rule'], [o.privateVma, '--private-vma'],
    [o.walkStops, '--walk-stops'], [o.reads, '--reads'], [o.offsets, '--offsets'], [o.munmap, '--munmap'], [o.remap, '--remap'],
    [o.unregisteredTail, '--unregistered-tail'],
  ];
  for (const [set, flag] of flags) if (set) out.push(flag);
  if (o.flushCeiling !== null) out.push('--flush-ceiling', String(o.flushCeiling));
  if (o.driver !== null && o.switchAfter !== d.switchAfter) out.push('--switch-after', String(o.switchAfter));
  if (o.resources !== d.resources) out.push('--resources', String(o.resources));
  if (o.ignore.length > 0) out.push('--ignore', o.ignore.join(','));
  const plants = PLANT_NAMES.filter((k) => o.plants[k]);
  if (plants.length > 0) out.push('--plant', plants.join(','));
  return out;
}
