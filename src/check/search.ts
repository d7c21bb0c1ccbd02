/**
 * Depth-first search over the decision tree of one scenario at one bound
 * (stateless model checking with re-execution, made cheaper three ways):
 *
 *  - Checkpoints. At a top-level decision point nothing is suspended, so the
 *    world plus the actors' progress is the whole state: it is saved there
 *    (when the point has an alternative left), and a backtrack re-executes
 *    only from the nearest checkpoint at or above the decision it changes.
 *  - State caching. At every new decision point the full state key (state.ts
 *    and the execution's bookkeeping) is looked up; a state already explored
 *    with at least as much preemption budget left has no future the earlier
 *    visit did not cover, so the execution is abandoned there.
 *  - Sleep sets (partial-order reduction, Godefroid). Two CPU accesses that
 *    both hit in their TLBs commute (execution.ts, atomicMask): once the
 *    search has explored "a then b" from a decision point, it does not start
 *    "b then a" — b is asleep after a until something dependent runs. This
 *    prunes *before* re-executing, and it keeps every reachable state (sleep
 *    sets reduce transitions, not states). Combined with state caching by
 *    storing each state's sleep set (state.ts).
 *
 * A Search can also take a Task — a fixed prefix of choices and a range of
 * choices at the decision after it — which is how work is split between
 * workers (parallel.ts) and handed over from a single thread to several.
 */
import { CONTINUE, type Checkpoint, type DecisionSource, Execution, Outcome, PROBED, PRUNE } from './execution.js';
import type { Violation } from './invariants.js';
import type { Scenario } from './scenario.js';
import { formatSchedule } from './schedule.js';
import { PRUNED, type StateCache } from './state.js';

/**
 * A subtree: replay `prefix`, then explore choices [lo, hi) at the next
 * decision, whose sleep set is `sleep`. hi 0 with an empty prefix: the whole tree.
 */
export interface Task {
  prefix: number[];
  lo: number;
  hi: number;
  sleep: number;
}

const WHOLE_TREE: Task = Object.freeze({ prefix: [], lo: 0, hi: 0, sleep: 0 });

/** What one search (or one worker) counted. */
export interface SearchCounts {
  /** Executions started: complete, pruned, or failing. */
  interleavings: number;
  complete: number;
  /** Abandoned at a state explored before, or because every move there was asleep. */
  pruned: number;
  /** Alternatives never executed because they were asleep. */
  slept: number;
  decisionPoints: number;
  /** Decisions re-executed to reach a branch (from a checkpoint). */
  replayed: number;
  /** Alternatives looked at one step ahead, and those that step showed explored already. */
  probes: number;
  probesSettled: number;
  maxDepth: number;
  blockedAttempts: number;
  faults: { missing: number; wp: number; cow: number; dirty: number; spurious: number };
  dirtyBitSets: number;
  tlbFlushes: number;
  ipis: number;
}

export function emptyCounts(): SearchCounts {
  return {
    interleavings: 0, complete: 0, pruned: 0, slept: 0, decisionPoints: 0, replayed: 0, probes: 0, probesSettled: 0, maxDepth: 0, blockedAttempts: 0,
    faults: { missing: 0, wp: 0, cow: 0, dirty: 0, spurious: 0 }, dirtyBitSets: 0, tlbFlushes: 0, ipis: 0,
  };
}

export function addCounts(into: SearchCounts, c: SearchCounts): void {
  for (const k of ['interleavings', 'complete', 'pruned', 'slept', 'decisionPoints', 'replayed', 'probes', 'probesSettled', 'blockedAttempts', 'dirtyBitSets', 'tlbFlushes', 'ipis'] as const) into[k] += c[k];
  into.maxDepth = Math.max(into.maxDepth, c.maxDepth);
  for (const k of FAULT_KINDS) into.faults[k] += c.faults[k];
}

export interface Failure {
  violation: Violation;
  schedule: string;
  preemptions: number;
  bound: number;
}

export interface SearchOptions {
  bound: number;
  /** null: no state caching. */
  visited: StateCache | null;
  /** Sleep sets (default true). */
  sleepSets?: boolean;
  /** Record the global-state key of every decision point reached. */
  reached?: Set<number> | null;
  /** Probe alternatives one step ahead (default true; needs state caching). */
  probes?: boolean;
}

const FAULT_KINDS = ['missing', 'wp', 'cow', 'dirty', 'spurious'] as const;

/** Width of the per-decision enabled-list record (actors + CONTINUE). */
const WIDTH = 16;

export class Search implements DecisionSource {
  readonly counts = emptyCounts();
  failure: Failure | null = null;
  readonly exec: Execution;
  private readonly bound: number;
  private readonly visited: StateCache | null;
  private readonly sleepSets: boolean;
  private readonly reached: Set<number> | null;
  // Per decision index:
  private choiceCounts = new Int32Array(256);
  /** One past the last choice this search may take there (a donated rest belongs to someone else). */
  private limit = new Int32Array(256);
  private choices = new Int32Array(256);
  private actors = new Int32Array(256);
  private sleep = new Int32Array(256);
  /** Choices a probe found already explored (bit per choice index). */
  private settled = new Int32Array(256);
  private enabledAt = new Int32Array(256 * WIDTH);
  private hasCp = new Uint8Array(256);
  private cps: Array<Checkpoint | undefined> = [];
  /** Decisions recorded by the current execution. */
  private length = 0;
  /** Decisions to replay before exploring; the last one is the branch. */
  private prefix = 0;
  /** Decisions below this index are fixed (a task's prefix). */
  private floor = 0;
  private pos = 0;
  /** Sleep set handed to the next new decision point, and to the one a probe reaches. */
  private pendingSleep = 0;
  private probeSleep = 0;
  private readonly probes: boolean;
  private taskSleep = 0;
  /** Checkpoint index the next run starts from (0 without one: the initial state). */
  private resumeAt = 0;
  /** Whether the current work has run an execution yet; whether its branch decision is recorded. */
  private started = false;
  private floorRecorded = false;
  private readonly blockedBase: number;

  constructor(readonly scenario: Scenario, opts: SearchOptions, exec?: Execution) {
    this.exec = exec ?? new Execution(scenario);
    this.blockedBase = this.exec.blockedTotal;
    this.bound = opts.bound;
    this.visited = opts.visited;
    this.sleepSets = opts.sleepSets ?? true;
    this.probes = opts.probes ?? true;
    this.reached = opts.reached ?? null;
  }

  /** Explore the whole tree (until `stop` says so). */
  runAll(stop?: () => boolean): void {
    this.begin(WHOLE_TREE);
    this.drain(stop);
  }

  /** Make `task` the current work (nothing else may be pending). */
  begin(task: Task): void {
    const d = task.prefix.length;
    this.ensure(d + 1);
    this.choices.set(task.prefix, 0);
    this.floor = d;
    this.taskSleep = task.sleep;
    this.hasCp.fill(0);
    if (task.hi === 0) {
      // The root of the whole tree: decision 0 is explored like any new one.
      this.prefix = 0;
      this.limit[0] = 0;
    } else {
      this.choices[d] = task.lo;
      this.limit[d] = task.hi;
      this.prefix = d + 1;
    }
    this.length = this.prefix;
    this.resumeAt = 0;
    this.started = false;
    this.floorRecorded = false;
  }

  /**
   * Run executions until the current work is done, `stop` says so (checked
   * between executions) or an invariant fails. Returns whether work is left.
   */
  drain(stop?: () => boolean): boolean {
    for (;;) {
      if (this.started && !this.backtrack()) return false;
      this.started = true;
      this.runOne();
      if (this.failure !== null) return false;
      if (stop?.()) return this.hasWork();
    }
  }

  /** Whether a backtrack would find an unexplored branch. */
  hasWork(): boolean {
    for (let d = this.length - 1; d >= this.floor; d--) if (this.nextChoice(d) >= 0) return true;
    return false;
  }

  /**
   * Give away the untried choices of the shallowest decision that has some,
   * as a task; this search will not take them. Null when there is nothing to give.
   */
  split(): Task | null {
    for (let d = this.floor; d < this.length; d++) {
      const first = this.nextChoice(d);
      if (first < 0) continue;
      const hi = this.limitOf(d);
      const task: Task = { prefix: Array.from(this.choices.subarray(0, d)), lo: first, hi, sleep: this.sleep[d]! };
      this.limit[d] = first;
      return task;
    }
    return null;
  }

  /** The remaining work, as tasks, leaving this search with nothing to do. */
  splitAll(): Task[] {
    const out: Task[] = [];
    for (let t = this.split(); t !== null; t = this.split()) out.push(t);
    return out;
  }

  decide(exec: Execution): number {
    if (exec.probing) return this.judgeProbe(exec);
    const i = this.pos++;
    this.ensure(i + 1);
    const n = exec.enabledCount;
    if (i < this.prefix) return this.replay(i, n, exec);
    exec.hashGlobal();
    this.record(i, exec);
    this.reached?.add(exec.globalKey());
    let sleep = this.sleepSets ? this.pendingSleep : 0;
    if (this.visited !== null) {
      exec.hashState();
      sleep = this.visited.visit(exec.hasher, exec.remainingBudget, sleep);
      if (sleep === PRUNED) throw PRUNE;
    }
    this.sleep[i] = sleep;
    this.limit[i] = n;
    this.length = i + 1;
    this.counts.decisionPoints++;
    const c = this.firstAwake(i, 0);
    if (c < 0) {
      this.counts.slept += n;
      throw PRUNE;
    }
    this.counts.slept += c;
    this.settled[i] = 0;
    // At top level a backtrack restores this very point's checkpoint: probing would save nothing.
    if (this.probes && this.visited !== null && !exec.topLevel) this.probeAlternatives(i, c, exec);
    return this.take(i, c, exec);
  }

  /**
   * Before taking c at a new decision point, look one step down each other
   * awake choice (Execution.probe): one whose next state is already explored
   * is settled now, so backtracking never re-executes the path to it.
   */
  private probeAlternatives(i: number, c: number, exec: Execution): void {
    for (let k = this.firstAwake(i, c + 1); k >= 0; k = this.firstAwake(i, k + 1)) {
      if (exec.enabled[k] === CONTINUE) continue;
      this.probeSleep = this.childSleep(i, k, exec);
      this.counts.probes++;
      if (exec.probe(k)) {
        this.settled[i]! |= 1 << k;
        this.counts.probesSettled++;
      }
    }
  }

  /** The first decision point of a probe: is its state already explored (or has every move asleep)? */
  private judgeProbe(exec: Execution): never {
    exec.hashGlobal();
    exec.hashState();
    let pruned = this.visited!.peek(exec.hasher, exec.remainingBudget, this.probeSleep);
    if (!pruned && exec.topLevel) {
      pruned = true;
      for (let k = 0; k < exec.enabledCount && pruned; k++) if (!(this.probeSleep & (1 << exec.enabled[k]!))) pruned = false;
    }
    exec.probePruned = pruned;
    throw PROBED;
  }

  /** A decision on the way to the branch: the recorded choice (below the floor: the task's). */
  private replay(i: number, n: number, exec: Execution): number {
    this.counts.replayed++;
    const c = this.choices[i]!;
    if (i < this.floor) {
      if (c >= n) throw new Error(`explorer: replay diverged at decision ${i} (choice ${c} of ${n})`);
      if (exec.topLevel && this.hasCp[i] === 0) this.checkpoint(i, exec);
      return c;
    }
    if (i === this.floor && !this.floorRecorded) {
      // A task's branch decision, reached for the first time.
      this.record(i, exec);
      this.sleep[i] = this.taskSleep;
      this.floorRecorded = true;
    } else if (this.choiceCounts[i] !== n) {
      throw new Error(`explorer: replay diverged at decision ${i} (the scenario is not deterministic)`);
    }
    if (i < this.prefix - 1) {
      if (exec.topLevel && this.hasCp[i] === 0) this.checkpoint(i, exec);
      return c;
    }
    return this.take(i, c, exec);
  }

  /** Take choice c at decision i: remember it, checkpoint when another branch will start here, pass the sleep set on. */
  private take(i: number, c: number, exec: Execution): number {
    this.choices[i] = c;
    this.actors[i] = exec.enabled[c]!;
    if (exec.topLevel && this.hasCp[i] === 0 && this.nextChoiceAfter(i, c) >= 0) this.checkpoint(i, exec);
    this.pendingSleep = this.childSleep(i, c, exec);
    return c;
  }

  private runOne(): void {
    const from = this.resumeAt;
    this.pos = from;
    const exec = this.exec;
    const outcome = exec.run(this.bound, this, null, from === 0 && this.hasCp[0] === 0 ? exec.initial : this.cps[from]!);
    this.counts.interleavings++;
    if (this.length > this.counts.maxDepth) this.counts.maxDepth = this.length;
    const c = this.counts;
    const r = exec.counters;
    c.blockedAttempts = exec.blockedTotal - this.blockedBase;
    c.dirtyBitSets += r.dirtyBitSets;
    c.tlbFlushes += r.tlbFlushes;
    c.ipis += r.ipis;
    for (const k of FAULT_KINDS) c.faults[k] += r.faults[k];
    if (outcome === Outcome.Pruned) this.counts.pruned++;
    else {
      this.counts.complete++;
      if (outcome === Outcome.Violation) {
        this.failure = { violation: exec.violation!, schedule: formatSchedule(this.scenario, this.actors, this.length), preemptions: exec.preemptions, bound: this.bound };
      }
    }
  }

  /** Move to the next unexplored branch; false when the work is exhausted. */
  private backtrack(): boolean {
    let d = this.length;
    while (d > this.floor) {
      d--;
      const c = this.nextChoice(d);
      if (c < 0) continue;
      this.counts.slept += c - this.choices[d]! - 1;
      this.choices[d] = c;
      this.prefix = d + 1;
      this.length = d + 1;
      let t = d;
      while (t > 0 && this.hasCp[t] === 0) t--;
      this.resumeAt = t; // 0 without a checkpoint there: the initial state
      for (let k = d + 1; k < this.hasCp.length; k++) this.hasCp[k] = 0;
      return true;
    }
    return false;
  }

  /** Next choice after the current one at d that is awake and within the limit, or -1. */
  private nextChoice(d: number): number {
    return this.nextChoiceAfter(d, this.choices[d]!);
  }

  private nextChoiceAfter(d: number, c: number): number {
    return this.firstAwake(d, c + 1);
  }

  /** First choice at d from `from` on that is neither asleep nor settled by a probe, within the limit; -1 if none. */
  private firstAwake(d: number, from: number): number {
    const hi = this.limitOf(d);
    const sleep = this.sleep[d]!;
    const settled = this.settled[d]!;
    for (let c = from; c < hi; c++) {
      if (settled & (1 << c)) continue;
      const a = this.enabledAt[d * WIDTH + c]!;
      if (a === CONTINUE || !(sleep & (1 << a))) return c;
    }
    return -1;
  }

  private limitOf(d: number): number {
    return Math.min(this.limit[d]!, this.choiceCounts[d]!);
  }

  /** Sleep set of the decision after taking choice c at d: what d slept on or explored before c, if independent of c. */
  private childSleep(d: number, c: number, exec: Execution): number {
    if (!this.sleepSets) return 0;
    const a = exec.enabled[c]!;
    if (a === CONTINUE || !(exec.atomicMask & (1 << a))) return 0;
    let done = this.sleep[d]!;
    for (let k = 0; k < c; k++) {
      const b = exec.enabled[k]!;
      if (b !== CONTINUE) done |= 1 << b;
    }
    return done & exec.atomicMask & ~(1 << a);
  }

  private record(i: number, exec: Execution): void {
    const n = exec.enabledCount;
    if (n > WIDTH) throw new Error(`explorer: ${n} choices at one decision (at most ${WIDTH})`);
    this.choiceCounts[i] = n;
    this.enabledAt.set(exec.enabled.subarray(0, n), i * WIDTH);
  }

  private checkpoint(i: number, exec: Execution): void {
    this.cps[i] = exec.saveCheckpoint(this.cps[i]);
    this.hasCp[i] = 1;
  }

  private ensure(n: number): void {
    if (n <= this.choiceCounts.length) return;
    const size = Math.max(n, this.choiceCounts.length * 2);
    const grow = <T extends Int32Array | Uint8Array>(a: T, k = 1): T => {
      const b = new (a.constructor as new (n: number) => T)(size * k);
      b.set(a);
      return b;
    };
    this.choiceCounts = grow(this.choiceCounts);
    this.limit = grow(this.limit);
    this.choices = grow(this.choices);
    this.actors = grow(this.actors);
    this.sleep = grow(this.sleep);
    this.settled = grow(this.settled);
    this.hasCp = grow(this.hasCp);
    this.enabledAt = grow(this.enabledAt, WIDTH);
  }
}
