/**
 * One interleaving of a scenario, driven by a DecisionSource.
 *
 * Concurrency model. The core is synchronous and offers step points (step.ts)
 * through machine.stepHook. An execution is a sequence of decisions:
 *  - at top level (nothing running) it chooses which actor runs its next op;
 *  - at every step point of a running op it chooses to continue, or to start
 *    another idle actor's next op right there (a preemption). That op runs to
 *    completion, meeting its own step points (where the same choice recurs),
 *    then the same step point offers another choice.
 * At most `bound` preemptions happen per execution; top-level choices are free.
 *
 * Rules that keep the model faithful:
 *  - a helper (wp / clean-record) never starts while some walker is suspended
 *    holding a PTE lock (the core would throw WouldDeadlockError);
 *  - a CPU access that needs a fault on a locked table throws
 *    AccessBlockedError: the op stays pending and is retried later;
 *  - nothing kernel-side starts while some CPU is suspended at TlbFill, even
 *    with other ops nested above it: that CPU has translated and its store is
 *    in flight, and a TLB shootdown IPI is taken only at an instruction
 *    boundary, so no flush (nor anything ordered after one, like a consumer
 *    acting on the helper's return) can complete before that store. Kernel
 *    work that completes no flush commutes with the pending translation, so
 *    running it before the access starts covers it. Without this rule the
 *    explorer reports lost writes that no machine can produce.
 *
 * Local state of suspended ops lives on the JS stack, where a state hash
 * cannot see it. Each frame therefore carries a hash chain of what determines
 * it: the op's identity, the global state when it started, and the step kind,
 * page and global state at each resume. Between two step points an op runs
 * alone, so these inputs fix everything it has read (a conservative proxy:
 * equal chains imply equal local state).
 */
import { Bitmap } from '../core/bitmap.js';
import { type HelperStats, cleanRecordSharedMappingRange, newHelperStats, wpSharedMappingRange } from '../core/dirty-helpers.js';
import { AccessBlockedError } from '../core/errors.js';
import { Step, type StepHook, type StepKind } from '../core/step.js';
import { type Violation, checkCleanReturn, checkDeviceCopy, checkWpReturn, pageList } from './invariants.js';
import { type Actor, type Op, type Scenario, isHelperOp, isKernelOp } from './scenario.js';
import { type StateHasher, WorldView } from './state.js';
import { World } from './world.js';

/** Enabled-list entry meaning "let the suspended op continue". */
export const CONTINUE = -1;
const NONE = -2;

/** Thrown (as a value, no stack trace) by a DecisionSource to abandon an execution whose state was explored before. */
export const PRUNE = Object.freeze({ signal: 'prune' });
/** Thrown internally to unwind every frame once an invariant fails. */
const STOP = Object.freeze({ signal: 'stop' });

export const Outcome = { Complete: 0, Pruned: 1, Violation: 2 } as const;
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

export interface DecisionSource {
  /**
   * Pick an index into exec.enabled[0 .. exec.enabledCount). At a step point
   * index 0 is CONTINUE. Must leave the global hash of the current state set:
   * exec.hashGlobal(), or exec.setGlobalHash() with the values hashGlobal()
   * gave at this same decision point of an identical earlier execution (a
   * replayed prefix). May call exec.hashState(), and may throw PRUNE.
   */
  decide(exec: Execution): number;
}

/** Receives the execution's events to build a readable trace (counterexample.ts). */
export interface ExecutionTracer {
  /** Called once, with the execution's freshly built world. */
  attach(world: World): void;
  opStart(actor: Actor, op: Op, preempting: boolean): void;
  stepReached(kind: StepKind, pgoff: number): void;
  resumed(actor: Actor, op: Op, kind: StepKind, pgoff: number): void;
  /** `pages`: what a clean-record call recorded or a consumer copied; `walk`: a helper's walk statistics. */
  opEnd(actor: Actor, op: Op, result: OpResult): void;
  /** Kernel-side work outside the actors' ops (early consumer, final sync); `run` returns its description. */
  action(label: string, run: () => string): void;
}

export interface OpResult {
  /** A write that found the PTE lock held and stays pending. */
  blocked: boolean;
  pages: number;
  walk: HelperStats | null;
}

interface Frame {
  actor: number;
  opIndex: number;
  op: Op;
  /** Step the op is suspended at (-1 before its first). */
  kind: number;
  pgoff: number;
  /** Local-state hash chain (two lanes). */
  ha: number;
  hb: number;
  /** clean-record only: pgoffs dirty at its start, written while it ran, and its bitmap. */
  dirtyAtStart: number;
  written: number;
  bitmap: Bitmap | null;
}

const IDLE_OP: Op = { kind: 'consume' };

export class Execution {
  readonly world: World;
  /** Choices at the current decision point: CONTINUE or actor indices. */
  readonly enabled: Int32Array;
  enabledCount = 0;
  preemptions = 0;
  /** Accesses that found a PTE lock held and will retry. */
  blockedAttempts = 0;
  violation: Violation | null = null;
  private readonly view: WorldView;
  private readonly actors: readonly Actor[];
  private readonly next: Int32Array;
  private readonly busy: Uint8Array;
  /** Per kernel actor: pages its last clean-record call recorded, and those the consumer has copied. */
  private readonly recorded: Int32Array;
  private readonly consumed: Int32Array;
  private readonly frames: Frame[];
  private depth = 0;
  /** Suspended frames holding a PTE lock (at PteRead, CacheFlushed, PteCleared, PteCommitted). */
  private ptlHeld = 0;
  /** Suspended CPU accesses with a store in flight (at TlbFill). */
  private storesInFlight = 0;
  /** Global hash of the state at the latest decision point (two lanes). */
  gA = 0;
  gB = 0;
  private readonly beforeFlush: boolean;

  constructor(
    readonly scenario: Scenario,
    readonly bound: number,
    private readonly source: DecisionSource,
    private readonly hasher: StateHasher,
    private readonly tracer: ExecutionTracer | null = null,
  ) {
    this.world = new World(scenario);
    this.view = new WorldView(this.world);
    this.actors = scenario.actors;
    const n = this.actors.length;
    this.enabled = new Int32Array(n + 1);
    this.next = new Int32Array(n);
    this.busy = new Uint8Array(n);
    this.recorded = new Int32Array(n);
    this.consumed = new Int32Array(n);
    this.frames = Array.from({ length: n }, () => ({
      actor: -1, opIndex: -1, op: IDLE_OP, kind: -1, pgoff: -1, ha: 0, hb: 0, dirtyAtStart: 0, written: 0, bitmap: null,
    }));
    this.beforeFlush = scenario.options.consumer === 'before-flush';
    tracer?.attach(this.world);
  }

  get remainingBudget(): number {
    return this.bound - this.preemptions;
  }

  /** Run to the end (or until pruned or an invariant fails). */
  run(): Outcome {
    const machine = this.world.machine;
    machine.stepHook = this.hook;
    try {
      for (;;) {
        const a = this.choose(true);
        if (a === NONE) break;
        this.runOp(a, false);
      }
      machine.stepHook = null;
      this.finalSync();
      return this.violation === null ? Outcome.Complete : Outcome.Violation;
    } catch (e) {
      if (e === PRUNE) return Outcome.Pruned;
      if (e === STOP) return Outcome.Violation;
      throw e;
    } finally {
      machine.stepHook = null;
    }
  }

  /**
   * Hash the full state at the current decision point into the hasher: the
   * global hash plus every actor's progress, the consumer's bookkeeping and
   * the suspended frames.
   */
  hashState(): void {
    const h = this.hasher;
    h.begin(this.gA, this.gB);
    for (let a = 0; a < this.actors.length; a++) {
      h.word(this.next[a]!);
      h.word(this.recorded[a]!);
      h.word(this.consumed[a]!);
    }
    for (let i = 0; i < this.depth; i++) {
      const f = this.frames[i]!;
      h.word(f.actor);
      h.word(f.opIndex);
      h.word(f.kind);
      h.word(f.pgoff);
      h.word(f.ha);
      h.word(f.hb);
      h.word(f.dirtyAtStart);
      h.word(f.written);
      h.word(f.bitmap === null ? 0 : f.bitmap.words[0]!);
    }
  }

  /** The global hash (see hashGlobal) as one number, for sets of reached states. */
  globalKey(): number {
    this.hasher.begin(this.gA, this.gB);
    return this.hasher.key();
  }

  setGlobalHash(a: number, b: number): void {
    this.gA = a;
    this.gB = b;
  }

  hashGlobal(): void {
    const h = this.hasher;
    h.begin();
    this.view.hashInto(h);
    this.gA = h.a;
    this.gB = h.b;
  }

  /** Build the enabled list and ask the source. Returns an actor, CONTINUE, or NONE (top level, all done). */
  private choose(topLevel: boolean): number {
    let n = 0;
    const enabled = this.enabled;
    if (!topLevel) enabled[n++] = CONTINUE;
    if (topLevel || this.preemptions < this.bound) {
      for (let a = 0; a < this.actors.length; a++) {
        const ops = this.actors[a]!.ops;
        if (this.busy[a] || this.next[a]! >= ops.length) continue;
        const op = ops[this.next[a]!]!;
        if (!topLevel && isKernelOp(op) && (this.storesInFlight > 0 || (isHelperOp(op) && this.ptlHeld > 0))) continue;
        enabled[n++] = a;
      }
    }
    if (n === 0) return NONE;
    this.enabledCount = n;
    return enabled[this.source.decide(this)]!;
  }

  private readonly hook: StepHook = (kind, _actor, mm, vpn) => {
    const f = this.frames[this.depth - 1]!;
    const pgoff = vpn < 0 ? -1 : this.world.pgoffAt(mm, vpn);
    f.kind = kind;
    f.pgoff = pgoff;
    this.tracer?.stepReached(kind, pgoff);
    const ptl = kind === Step.PteRead || kind === Step.CacheFlushed || kind === Step.PteCleared || kind === Step.PteCommitted;
    const store = kind === Step.TlbFill;
    if (ptl) this.ptlHeld++;
    if (store) this.storesInFlight++;
    if (kind === Step.BeforeVmaFlush && this.beforeFlush && f.op.kind === 'clean') this.consumeEarly(f);
    for (;;) {
      const a = this.choose(false);
      if (a === CONTINUE) break;
      this.preemptions++;
      this.runOp(a, true);
    }
    // gA/gB now hold the state the op resumes from.
    const h = this.hasher;
    h.begin(f.ha, f.hb);
    h.word(kind);
    h.word(pgoff);
    h.word(this.gA);
    h.word(this.gB);
    f.ha = h.a;
    f.hb = h.b;
    if (ptl) this.ptlHeld--;
    if (store) this.storesInFlight--;
    this.tracer?.resumed(this.actors[f.actor]!, f.op, kind, pgoff);
  };

  private runOp(a: number, preempting: boolean): void {
    const actor = this.actors[a]!;
    const opIndex = this.next[a]!;
    const op = actor.ops[opIndex]!;
    const f = this.frames[this.depth++]!;
    f.actor = a;
    f.opIndex = opIndex;
    f.op = op;
    f.kind = -1;
    f.pgoff = -1;
    f.dirtyAtStart = 0;
    f.written = 0;
    f.bitmap = null;
    const h = this.hasher;
    h.begin(this.gA, this.gB);
    h.word(a);
    h.word(opIndex);
    f.ha = h.a;
    f.hb = h.b;
    this.busy[a] = 1;
    this.tracer?.opStart(actor, op, preempting);
    const world = this.world;
    let violation: Violation | null = null;
    let blocked = false;
    let pages = 0;
    // Walk statistics only matter to a trace; exploration skips the allocation.
    const walk = this.tracer === null || !isHelperOp(op) ? null : newHelperStats();
    switch (op.kind) {
      case 'write':
        try {
          world.write(op);
          // Guarantee (b) bookkeeping: the write completed while these calls were running.
          for (let i = 0; i < this.depth - 1; i++) if (this.frames[i]!.op.kind === 'clean') this.frames[i]!.written |= 1 << op.pgoff;
        } catch (e) {
          if (!(e instanceof AccessBlockedError)) throw e;
          blocked = true;
          this.blockedAttempts++;
        }
        break;
      case 'clean': {
        f.dirtyAtStart = world.dirtyMask(op.first, op.nr);
        f.bitmap = new Bitmap(world.pages);
        this.recorded[a] = 0;
        this.consumed[a] = 0;
        cleanRecordSharedMappingRange(world.bo, op.first, op.nr, 0, f.bitmap, { start: 0, end: 0 }, { order: op.order, stats: walk ?? undefined });
        pages = f.bitmap.words[0]!;
        this.recorded[a] = pages;
        violation = checkCleanReturn(world, op.first, op.nr, f.dirtyAtStart, f.written, pages);
        break;
      }
      case 'wp':
        wpSharedMappingRange(world.bo, op.first, op.nr, { stats: walk ?? undefined });
        violation = checkWpReturn(world, op.first, op.nr);
        break;
      case 'consume':
        pages = this.recorded[a]! & ~this.consumed[a]!;
        world.copyToDevice(pages);
        this.consumed[a]! |= pages;
        break;
    }
    this.busy[a] = 0;
    this.depth--;
    if (!blocked) this.next[a]++;
    this.tracer?.opEnd(actor, op, { blocked, pages, walk });
    if (violation !== null) {
      this.violation = violation;
      throw STOP;
    }
  }

  /** Consumer timing 'before-flush': copy what the call has recorded so far, before post_vma's flush. */
  private consumeEarly(f: Frame): void {
    const run = (): string => {
      const pages = f.bitmap!.words[0]! & ~this.consumed[f.actor]!;
      this.world.copyToDevice(pages);
      this.consumed[f.actor]! |= pages;
      return `consumer copies pages recorded so far ${pageList(pages)} before the deferred TLB flush`;
    };
    if (this.tracer === null) run();
    else this.tracer.action(this.actors[f.actor]!.label, run);
  }

  /** Quiescent sync: flush every cache, run the helper once more, copy what it records; then compare with the oracle. */
  private finalSync(): void {
    const world = this.world;
    const act = (run: () => string): void => {
      if (this.tracer === null) run();
      else this.tracer.action('final', run);
    };
    act(() => {
      world.flushAllCaches();
      return 'quiescent sync: flush_cache_range over every VMA of the BO';
    });
    let recorded = 0;
    for (const op of this.scenario.finalSync) {
      act(() => {
        if (op.kind === 'wp') {
          wpSharedMappingRange(world.bo, op.first, op.nr);
          return 'quiescent sync: wp_shared_mapping_range over the BO';
        }
        if (op.kind === 'clean') {
          const bitmap = new Bitmap(world.pages);
          cleanRecordSharedMappingRange(world.bo, op.first, op.nr, 0, bitmap, { start: 0, end: 0 }, { order: op.order });
          recorded |= bitmap.words[0]!;
          return `quiescent sync: ${op.order === 'deferred' ? '' : `${op.order} `}clean-record records ${pageList(recorded)}`;
        }
        world.copyToDevice(recorded);
        return `quiescent sync: consumer copies ${pageList(recorded)} to the device`;
      });
    }
    this.violation = checkDeviceCopy(world);
  }
}
