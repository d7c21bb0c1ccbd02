/**
 * Exhaustive exploration of a scenario's interleavings up to a preemption
 * bound (search.ts does the depth-first search; parallel.ts spreads it over
 * worker threads).
 *
 * The search runs at the requested bound directly. When it finds a violation
 * with p preemptions and `iterative` is set (the default), bounds 0, 1, ..., p
 * are searched in turn, single-threaded, and the first violation found is
 * reported: a counterexample with as few preemptions as possible, the same
 * one every time, whatever the number of workers. A scenario that holds pays
 * nothing for this.
 *
 * Limits (maxSeconds, maxInterleavings) stop the search early with the
 * verdict 'partial': nothing was found in the part explored, which proves
 * nothing about the rest.
 */
import { Execution } from './execution.js';
import type { Violation } from './invariants.js';
import type { Scenario } from './scenario.js';
import { type Failure, Search, type SearchCounts, addCounts, emptyCounts } from './search.js';
import { VisitedStates } from './state.js';

export interface ExploreOptions {
  /** Maximum preemptions per interleaving. */
  bound: number;
  /** State caching (default true). */
  reduce?: boolean;
  /** Sleep sets (default: as `reduce`). */
  sleepSets?: boolean;
  /** Report a counterexample with as few preemptions as possible (default true). */
  iterative?: boolean;
  /** Record the global-state key of every decision point reached (to check that a reduction loses no state). */
  collectStates?: boolean;
  /** Stop after this many seconds, or interleavings; the verdict is then 'partial' unless a violation was found. */
  maxSeconds?: number;
  maxInterleavings?: number;
  /** Called about every `progressMs` (default 1000) while the search runs. */
  onProgress?: (p: Progress) => void;
  progressMs?: number;
}

export interface Progress {
  interleavings: number;
  states: number;
  seconds: number;
  /** 'search' at the requested bound, 'minimise' while looking for fewer preemptions. */
  phase: 'search' | 'minimise';
  bound: number;
  workers: number;
}

export interface ExploreStats extends SearchCounts {
  /** Distinct states recorded by the state cache (0 without it). */
  states: number;
  seconds: number;
  perSecond: number;
  /** Threads that searched (1: this one). */
  workers: number;
}

export type Verdict = 'holds' | 'fails' | 'partial';

export interface ExploreResult {
  verdict: Verdict;
  bound: number;
  violation: Violation | null;
  /** The failing interleaving (see schedule.ts), and its preemption count. */
  schedule: string | null;
  preemptions: number | null;
  stats: ExploreStats;
  /** With collectStates: keys of the global states (machine, memory, oracle, device) seen at decision points. */
  reachedStates: Set<number> | null;
  /** What stopped a partial search. */
  stoppedBy: 'max-seconds' | 'max-interleavings' | null;
}

/** Decides, between executions, whether a search must stop, and reports progress. */
export class Limits {
  stoppedBy: ExploreResult['stoppedBy'] = null;
  private lastProgress: number;
  private checks = 0;

  constructor(private readonly opts: ExploreOptions, readonly t0: number) {
    this.lastProgress = t0;
  }

  /**
   * True when the search must stop now. Called between executions, it reads
   * the clock every 64th call; `everyCall` reads it each time (a timer).
   */
  reached(interleavings: number, states: () => number, phase: Progress['phase'], bound: number, workers = 1, everyCall = false): boolean {
    const o = this.opts;
    if (o.maxInterleavings !== undefined && interleavings >= o.maxInterleavings) {
      this.stoppedBy = 'max-interleavings';
      return true;
    }
    if (!everyCall && (++this.checks & 63) !== 0) return false;
    const now = performance.now();
    if (o.maxSeconds !== undefined && now - this.t0 >= o.maxSeconds * 1000) {
      this.stoppedBy = 'max-seconds';
      return true;
    }
    if (o.onProgress !== undefined && now - this.lastProgress >= (o.progressMs ?? 1000)) {
      this.lastProgress = now;
      o.onProgress({ interleavings, states: states(), seconds: (now - this.t0) / 1000, phase, bound, workers });
    }
    return false;
  }
}

export function validateExploreOptions(opts: ExploreOptions): void {
  if (!Number.isInteger(opts.bound) || opts.bound < 0) throw new RangeError(`bound must be a non-negative integer, got ${opts.bound}`);
  if (opts.maxSeconds !== undefined && !(opts.maxSeconds > 0)) throw new RangeError(`maxSeconds must be positive, got ${opts.maxSeconds}`);
  if (opts.maxInterleavings !== undefined && !(Number.isInteger(opts.maxInterleavings) && opts.maxInterleavings > 0)) {
    throw new RangeError(`maxInterleavings must be a positive integer, got ${opts.maxInterleavings}`);
  }
}

/** Search `scenario` on this thread. */
export function explore(scenario: Scenario, opts: ExploreOptions): ExploreResult {
  validateExploreOptions(opts);
  const t0 = performance.now();
  const limits = new Limits(opts, t0);
  const reduce = opts.reduce ?? true;
  const visited = reduce ? new VisitedStates() : null;
  const reachedStates = opts.collectStates ? new Set<number>() : null;
  const exec = new Execution(scenario);
  const search = new Search(scenario, { bound: opts.bound, visited, sleepSets: opts.sleepSets ?? reduce, reached: reachedStates }, exec);
  const counts = emptyCounts();
  // AccessBlockedError is the model's "retry later", thrown and caught by the thousand: no stack traces.
  const traces = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    search.runAll(() => limits.reached(search.counts.interleavings, () => visited?.size ?? 0, 'search', opts.bound));
    addCounts(counts, search.counts);
    let failure = search.failure;
    let states = visited?.size ?? 0;
    if (failure !== null && (opts.iterative ?? true)) {
      const m = minimise(scenario, exec, opts, failure, limits, counts);
      failure = m.failure;
      states += m.states;
    }
    return finish(counts, states, failure, limits, t0, opts.bound, 1, reachedStates);
  } finally {
    Error.stackTraceLimit = traces;
  }
}

/**
 * Bounds 0..failure.preemptions in turn, on this thread, one state cache for
 * all of them (a state explored with less budget is explored again with
 * more): the first violation found.
 */
export function minimise(scenario: Scenario, exec: Execution, opts: ExploreOptions, found: Failure, limits: Limits, counts: SearchCounts): { failure: Failure; states: number } {
  const reduce = opts.reduce ?? true;
  const visited = reduce ? new VisitedStates() : null;
  for (let bound = 0; bound <= found.preemptions; bound++) {
    const search = new Search(scenario, { bound, visited, sleepSets: opts.sleepSets ?? reduce }, exec);
    search.runAll(() => limits.reached(counts.interleavings + search.counts.interleavings, () => visited?.size ?? 0, 'minimise', bound));
    addCounts(counts, search.counts);
    if (search.failure !== null) return { failure: search.failure, states: visited?.size ?? 0 };
    if (limits.stoppedBy !== null) break;
  }
  return { failure: found, states: visited?.size ?? 0 };
}

export function finish(
  counts: SearchCounts, states: number, failure: Failure | null, limits: Limits, t0: number, bound: number, workers: number, reachedStates: Set<number> | null,
): ExploreResult {
  const seconds = (performance.now() - t0) / 1000;
  const stats: ExploreStats = { ...counts, states, seconds, perSecond: seconds > 0 ? Math.round(counts.interleavings / seconds) : 0, workers };
  const verdict: Verdict = failure !== null ? 'fails' : limits.stoppedBy !== null ? 'partial' : 'holds';
  return {
    verdict,
    bound: failure?.bound ?? bound,
    violation: failure?.violation ?? null,
    schedule: failure?.schedule ?? null,
    preemptions: failure?.preemptions ?? null,
    stats,
    reachedStates,
    stoppedBy: failure !== null ? null : limits.stoppedBy,
  };
}
