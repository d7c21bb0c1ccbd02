/**
 * Exhaustive exploration of a scenario's interleavings (stateless model
 * checking with re-execution): depth-first over the decision tree, each
 * execution replaying the decision prefix on a fresh machine and then taking
 * the first choice at every new decision point; backtracking bumps the
 * deepest decision that still has an untried choice.
 *
 * Reduction: at every new decision point the full state key (state.ts +
 * the execution's bookkeeping) is looked up. A state already explored with at
 * least as much preemption budget left has no future the earlier visit did
 * not cover, so the execution is abandoned there. This merges, among others,
 * every order of independent writes, and repeated blocked attempts.
 *
 * Bounds: at most `bound` preemptions per execution. With `iterative` (the
 * default) bounds 0, 1, ..., bound are explored in turn and the search stops
 * at the first violation, so a counterexample uses as few preemptions as
 * possible; counts are totals over all rounds.
 */
import type { FaultKind } from '../core/step.js';
import { type DecisionSource, Execution, Outcome, PRUNE } from './execution.js';
import type { Violation } from './invariants.js';
import type { Scenario } from './scenario.js';
import { formatSchedule } from './schedule.js';
import { StateHasher, VisitedStates } from './state.js';

export interface ExploreOptions {
  /** Maximum preemptions per interleaving. */
  bound: number;
  /** State hashing (default true). */
  reduce?: boolean;
  /** Explore bounds 0..bound in turn (default true). */
  iterative?: boolean;
  /** Record the global-state key of every decision point reached (to check that a reduction loses no state). */
  collectStates?: boolean;
}

export interface ExploreStats {
  /** Executions started: complete, pruned, or failing. */
  interleavings: number;
  /** Executions that ran to the end. */
  complete: number;
  pruned: number;
  /** Distinct states recorded by the reduction (0 without it). */
  states: number;
  decisionPoints: number;
  /** Deepest decision stack. */
  maxDepth: number;
  blockedAttempts: number;
  /** Summed over every execution. */
  faults: Record<FaultKind, number>;
  dirtyBitSets: number;
  tlbFlushes: number;
  ipis: number;
  seconds: number;
  perSecond: number;
}

export interface ExploreResult {
  verdict: 'holds' | 'fails';
  bound: number;
  violation: Violation | null;
  /** The failing interleaving (see schedule.ts), and its preemption count. */
  schedule: string | null;
  preemptions: number | null;
  stats: ExploreStats;
  /** With collectStates: keys of the global states (machine, memory, oracle, device) seen at decision points. */
  reachedStates: Set<number> | null;
}

/**
 * The decision stack: counts[i] choices existed at point i, choices[i] was
 * taken, actors[i] is what it meant; globalA/B[i] is the global state hash
 * there, reused when the point is replayed (replays are deterministic).
 */
class DecisionStack implements DecisionSource {
  counts = new Int32Array(256);
  choices = new Int32Array(256);
  actors = new Int32Array(256);
  globalA = new Int32Array(256);
  globalB = new Int32Array(256);
  /** Decisions recorded by the current execution. */
  length = 0;
  /** Decisions to replay before exploring. */
  private prefix = 0;
  private pos = 0;
  decisionPoints = 0;

  constructor(
    private readonly visited: VisitedStates | null,
    private readonly hasher: StateHasher,
    private readonly reached: Set<number> | null,
  ) {}

  reset(): void {
    this.prefix = 0;
    this.length = 0;
  }

  startExecution(): void {
    this.pos = 0;
    this.length = 0;
  }

  decide(exec: Execution): number {
    const i = this.pos++;
    if (i < this.prefix) {
      if (this.counts[i] !== exec.enabledCount) throw new Error(`explorer: replay diverged at decision ${i} (the scenario is not deterministic)`);
      exec.setGlobalHash(this.globalA[i]!, this.globalB[i]!);
      const c = this.choices[i]!;
      this.actors[i] = exec.enabled[c]!;
      this.length = i + 1;
      return c;
    }
    exec.hashGlobal();
    if (this.reached !== null) this.reached.add(exec.globalKey());
    if (this.visited !== null) {
      exec.hashState();
      if (!this.visited.visit(this.hasher, exec.remainingBudget)) throw PRUNE;
    }
    if (i === this.counts.length) this.grow();
    this.counts[i] = exec.enabledCount;
    this.globalA[i] = exec.gA;
    this.globalB[i] = exec.gB;
    this.choices[i] = 0;
    this.actors[i] = exec.enabled[0]!;
    this.length = i + 1;
    this.decisionPoints++;
    return 0;
  }

  /** Move to the next unexplored branch; false when the tree is exhausted. */
  backtrack(): boolean {
    let d = this.length;
    while (d > 0 && this.choices[d - 1]! + 1 >= this.counts[d - 1]!) d--;
    if (d === 0) return false;
    this.choices[d - 1]!++;
    this.prefix = d;
    return true;
  }

  private grow(): void {
    const n = this.counts.length * 2;
    for (const k of ['counts', 'choices', 'actors', 'globalA', 'globalB'] as const) {
      const a = new Int32Array(n);
      a.set(this[k]);
      this[k] = a;
    }
  }
}

function emptyStats(): ExploreStats {
  return {
    interleavings: 0, complete: 0, pruned: 0, states: 0, decisionPoints: 0, maxDepth: 0, blockedAttempts: 0,
    faults: { missing: 0, wp: 0, cow: 0, dirty: 0, spurious: 0 }, dirtyBitSets: 0, tlbFlushes: 0, ipis: 0,
    seconds: 0, perSecond: 0,
  };
}

function account(stats: ExploreStats, exec: Execution): void {
  const machine = exec.world.machine;
  for (const cpu of machine.cpus) {
    const f = cpu.counters.faults;
    for (const k in f) stats.faults[k as FaultKind] += f[k as FaultKind];
    stats.dirtyBitSets += cpu.counters.dirtyBitSets;
  }
  stats.tlbFlushes += machine.counters.tlbFlushes;
  stats.ipis += machine.counters.ipis;
  stats.blockedAttempts += exec.blockedAttempts;
}

export function explore(scenario: Scenario, opts: ExploreOptions): ExploreResult {
  if (!Number.isInteger(opts.bound) || opts.bound < 0) throw new RangeError(`bound must be a non-negative integer, got ${opts.bound}`);
  const visited = opts.reduce ?? true ? new VisitedStates() : null;
  const hasher = new StateHasher();
  const reachedStates = opts.collectStates ? new Set<number>() : null;
  const stack = new DecisionStack(visited, hasher, reachedStates);
  const stats = emptyStats();
  const t0 = performance.now();
  let failure: { violation: Violation; schedule: string; preemptions: number; bound: number } | null = null;

  for (let bound = opts.iterative ?? true ? 0 : opts.bound; bound <= opts.bound && failure === null; bound++) {
    stack.reset();
    do {
      stack.startExecution();
      const exec = new Execution(scenario, bound, stack, hasher);
      const outcome = exec.run();
      stats.interleavings++;
      if (stack.length > stats.maxDepth) stats.maxDepth = stack.length;
      account(stats, exec);
      if (outcome === Outcome.Pruned) {
        stats.pruned++;
      } else {
        stats.complete++;
        if (outcome === Outcome.Violation) {
          failure = { violation: exec.violation!, schedule: formatSchedule(scenario, stack.actors, stack.length), preemptions: exec.preemptions, bound };
          break;
        }
      }
    } while (stack.backtrack());
  }

  stats.seconds = (performance.now() - t0) / 1000;
  stats.perSecond = stats.seconds > 0 ? Math.round(stats.interleavings / stats.seconds) : 0;
  stats.states = visited?.size ?? 0;
  stats.decisionPoints = stack.decisionPoints;
  return {
    verdict: failure === null ? 'holds' : 'fails',
    bound: failure?.bound ?? opts.bound,
    violation: failure?.violation ?? null,
    schedule: failure?.schedule ?? null,
    preemptions: failure?.preemptions ?? null,
    stats,
    reachedStates,
  };
}
