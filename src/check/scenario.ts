/**
 * What the explorer runs: a small, fixed program per actor. CPU actors write
 * bytes into one buffer object (BO); kernel actors call the dirty helpers and
 * a consumer that copies recorded pages from memory into a device copy. The
 * explorer chooses only the interleaving, never the program.
 *
 * Every write stores a distinct value into byte `cpu` of its page, so
 * (a) the last value written to each byte identifies the write (the oracle),
 * and (b) all data ever written lives in bytes [0, cpus) < 4 of a page: the
 * first 32-bit word of a page captures its whole content (state hashing
 * relies on this).
 */
import type { HelperOrder } from '../core/dirty-helpers.js';
import { ARCH_NAMES, type ArchName } from '../core/machine.js';

export const HELPER_NAMES = ['clean-record', 'strict', 'strict-tlb-first', 'wp-clean'] as const;
/**
 * clean-record: deferred flush (kernel); strict: page_mkclean as the seed
 * thread quotes it (cache flush, then clear + TLB flush, then a clean
 * read-only PTE); strict-tlb-first: the same with the TLB flushed before the
 * cache; wp-clean: wp then clean-record (vmwgfx's snapshot pair).
 */
export type HelperName = (typeof HELPER_NAMES)[number];

export const CONSUMER_TIMINGS = ['after-return', 'before-flush'] as const;
/**
 * after-return: the consumer copies recorded pages once the clean-record call
 * has returned (the documented contract). before-flush: it also copies the
 * pages recorded so far at each post_vma, before the deferred TLB flush (the
 * order §1.7 says is unsafe).
 */
export type ConsumerTiming = (typeof CONSUMER_TIMINGS)[number];

export interface ScenarioOptions {
  arch: ArchName;
  helper: HelperName;
  cpus: number;
  pages: number;
  /** Writes per CPU. */
  writes: number;
  /** Helper rounds of the main kernel actor (each: [wp,] clean-record, consume). */
  rounds: number;
  consumer: ConsumerTiming;
  /** A second kernel actor write-protects pgoffs [1, pages) concurrently (§1.4, §6.A2). */
  nestedWp: boolean;
  /** Machine option: flush the whole range when another deferred flush is pending. */
  nestedFlushRule: boolean;
  /** Another process maps the BO private read-only, sorting before the shared VMA (§6.A6). */
  privateVma: boolean;
  /** Machine option: kernel-faithful walk_page_mapping that stops at a skipped VMA. */
  walkStops: boolean;
}

export const DEFAULT_SCENARIO: Readonly<ScenarioOptions> = {
  arch: 'x86',
  helper: 'clean-record',
  cpus: 2,
  pages: 2,
  writes: 2,
  rounds: 1,
  consumer: 'after-return',
  nestedWp: false,
  nestedFlushRule: true,
  privateVma: false,
  walkStops: false,
};

/** Inclusive limits of the numeric options; larger programs explode combinatorially. */
export const SCENARIO_LIMITS = {
  cpus: { min: 1, max: 4 },
  pages: { min: 1, max: 4 },
  writes: { min: 1, max: 4 },
  rounds: { min: 1, max: 3 },
} as const;

export type Op =
  | { readonly kind: 'write'; readonly cpu: number; readonly pgoff: number; readonly offset: number; readonly value: number }
  | { readonly kind: 'wp'; readonly first: number; readonly nr: number }
  | { readonly kind: 'clean'; readonly first: number; readonly nr: number; readonly order: HelperOrder }
  | { readonly kind: 'consume' };

export interface Actor {
  /** Index in Scenario.actors; CPU actors first, so actor i < cpus is CPU i. */
  readonly index: number;
  /** 'cpu0', 'kernel0', ... */
  readonly label: string;
  /** Short token used in schedules: '0', '1', ... for CPUs, 'k0', 'k1' for kernel actors. */
  readonly token: string;
  readonly ops: readonly Op[];
}

export interface Scenario {
  readonly options: Readonly<ScenarioOptions>;
  readonly actors: readonly Actor[];
  /** The quiescent sync run after every actor finished: the same helper, then a full consume. */
  readonly finalSync: readonly Op[];
}

/** A scenario option outside its domain. */
export class ScenarioError extends Error {
  override readonly name = 'ScenarioError';
}

/** Pgoff of CPU c's k-th write: each CPU writes a page twice before moving on, so stale TLB entries get used. */
function writeTarget(o: ScenarioOptions, cpu: number, k: number): number {
  // vivt: the model's per-CPU caches are not coherent with each other, so a page has one writer.
  return o.arch === 'vivt' ? cpu % o.pages : (cpu + (k >> 1)) % o.pages;
}

function helperRound(o: ScenarioOptions): Op[] {
  const all = { first: 0, nr: o.pages };
  const order: HelperOrder = o.helper === 'strict' || o.helper === 'strict-tlb-first' ? o.helper : 'deferred';
  const clean: Op = { kind: 'clean', ...all, order };
  return o.helper === 'wp-clean' ? [{ kind: 'wp', ...all }, clean, { kind: 'consume' }] : [clean, { kind: 'consume' }];
}

export function buildScenario(partial: Partial<ScenarioOptions> = {}): Scenario {
  const o: ScenarioOptions = { ...DEFAULT_SCENARIO, ...partial };
  if (!ARCH_NAMES.includes(o.arch)) throw new ScenarioError(`arch must be one of ${ARCH_NAMES.join(', ')}, got '${o.arch}'`);
  if (!HELPER_NAMES.includes(o.helper)) throw new ScenarioError(`helper must be one of ${HELPER_NAMES.join(', ')}, got '${o.helper}'`);
  if (!CONSUMER_TIMINGS.includes(o.consumer)) throw new ScenarioError(`consumer must be one of ${CONSUMER_TIMINGS.join(', ')}, got '${o.consumer}'`);
  for (const [name, { min, max }] of Object.entries(SCENARIO_LIMITS)) {
    const v = o[name as keyof typeof SCENARIO_LIMITS];
    if (!Number.isInteger(v) || v < min || v > max) throw new ScenarioError(`${name} must be an integer in [${min}, ${max}], got ${v}`);
  }
  if (o.arch === 'vivt' && o.pages < o.cpus) {
    throw new ScenarioError(`vivt needs pages >= cpus (${o.pages} < ${o.cpus}): the model's per-CPU caches are not coherent, so each page gets one writer`);
  }
  const actors: Actor[] = [];
  for (let c = 0; c < o.cpus; c++) {
    const ops: Op[] = [];
    for (let k = 0; k < o.writes; k++) ops.push({ kind: 'write', cpu: c, pgoff: writeTarget(o, c, k), offset: c, value: 1 + c * o.writes + k });
    actors.push({ index: c, label: `cpu${c}`, token: String(c), ops });
  }
  const main: Op[] = [];
  for (let r = 0; r < o.rounds; r++) main.push(...helperRound(o));
  actors.push({ index: actors.length, label: 'kernel0', token: 'k0', ops: main });
  if (o.nestedWp) {
    const first = o.pages > 1 ? 1 : 0;
    actors.push({ index: actors.length, label: 'kernel1', token: 'k1', ops: [{ kind: 'wp', first, nr: o.pages - first }] });
  }
  return { options: o, actors, finalSync: helperRound(o) };
}

export function isKernelOp(op: Op): boolean {
  return op.kind !== 'write';
}

/** Helpers take the i_mmap lock and PTE locks; they may not start while a walker holds a PTE lock. */
export function isHelperOp(op: Op): boolean {
  return op.kind === 'wp' || op.kind === 'clean';
}

const hex = (v: number): string => `0x${v.toString(16).padStart(2, '0')}`;

export function describeOp(op: Op): string {
  switch (op.kind) {
    case 'write':
      return `write ${hex(op.value)} to pgoff ${op.pgoff} byte ${op.offset}`;
    case 'wp':
      return `wp_shared_mapping_range [${op.first},${op.first + op.nr})`;
    case 'clean':
      return `${op.order === 'deferred' ? '' : `${op.order} `}clean_record_shared_mapping_range [${op.first},${op.first + op.nr})`;
    case 'consume':
      return 'consumer copies recorded pages to the device';
  }
}

/** The options as CLI flags (for replay commands), omitting defaults. */
export function scenarioFlags(o: Readonly<ScenarioOptions>): string[] {
  const out = ['--arch', o.arch, '--helper', o.helper];
  for (const k of ['cpus', 'pages', 'writes', 'rounds'] as const) if (o[k] !== DEFAULT_SCENARIO[k]) out.push(`--${k}`, String(o[k]));
  if (o.consumer !== DEFAULT_SCENARIO.consumer) out.push('--consumer', o.consumer);
  if (o.nestedWp) out.push('--nested-wp');
  if (!o.nestedFlushRule) out.push('--no-nested-rule');
  if (o.privateVma) out.push('--private-vma');
  if (o.walkStops) out.push('--walk-stops');
  return out;
}
