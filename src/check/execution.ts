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
 *  - an op that walks page tables (a helper, a validation, a munmap) never
 *    starts while some walker is suspended holding a PTE lock (the core would
 *    throw WouldDeadlockError), a munmap never while a walker holds the i_mmap
 *    lock, and an op that takes the BO reservation never while a suspended op
 *    holds it: each would wait for the op it interrupted;
 *  - a CPU access that needs a fault on a locked table, or a fault handler
 *    that finds the reservation held, throws AccessBlockedError: the op stays
 *    pending and is retried later;
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
 * cannot see it. Each frame therefore records what its op still holds: its
 * position (step kind, page), the value the core passes as the step's detail
 * (the PTE a CPU filled or faulted on, the TLB entry it is about to update),
 * and for a helper walk its WalkLocals (Machine.walkObserver) with the
 * number of walks the op has started. Between two step points an op runs
 * alone, so these fix everything it will do when it resumes.
 *
 * Reuse. One Execution (and one World) serves a whole exploration: each run
 * starts by restoring a checkpoint — the initial state, or the state at a
 * top-level decision of an earlier run, where no op is suspended and the
 * world plus the actors' progress is the whole state.
 */
import { Bitmap } from '../core/bitmap.js';
import { type HelperStats, type WalkLocals, newHelperStats } from '../core/dirty-helpers.js';
import { AccessBlockedError } from '../core/errors.js';
import { Step, type StepHook, type StepKind } from '../core/step.js';
import { VivtCpu } from '../core/vivt.js';
import { PTE_DIRTY, PTE_WRITE } from '../core/pte.js';
import { type Violation, checkDeviceCopy, checkRecordingReturn, checkUffdWpWritable, checkWpReturn, pageList } from './invariants.js';
import { type Actor, type InvariantName, type Op, type Scenario, checkedInvariants, isKernelOp, isRecordingOp, isWalkingOp, takesReservation } from './scenario.js';
import { StateHasher, WorldView } from './state.js';
import { World, type WorldState } from './world.js';

/** Enabled-list entry meaning "let the suspended op continue". */
export const CONTINUE = -1;
const NONE = -2;

/** Thrown (as a value, no stack trace) by a DecisionSource to abandon an execution whose future was explored before. */
export const PRUNE = Object.freeze({ signal: 'prune' });
/** Thrown internally to unwind every frame once an invariant fails. */
const STOP = Object.freeze({ signal: 'stop' });
/** Thrown by a DecisionSource at the first decision point of a probe (see Execution.probe). */
export const PROBED = Object.freeze({ signal: 'probed' });

export const Outcome = { Complete: 0, Pruned: 1, Violation: 2 } as const;
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

export interface DecisionSource {
  /**
   * Pick an index into exec.enabled[0 .. exec.enabledCount). At a step point
   * index 0 is CONTINUE. To judge the state, call exec.hashGlobal() then
   * exec.hashState() (the key is in exec.hasher). May call
   * exec.saveCheckpoint() at a top-level decision (exec.topLevel) and
   * exec.probe(), and may throw PRUNE; while exec.probing it must throw
   * PROBED with exec.probePruned set.
   */
  decide(exec: Execution): number;
}

/** Receives the execution's events to build a readable trace (counterexample.ts). */
export interface ExecutionTracer {
  /** Called once per run, with the execution's world. */
  attach(world: World): void;
  opStart(actor: Actor, op: Op, preempting: boolean): void;
  stepReached(kind: StepKind, page: number): void;
  resumed(actor: Actor, op: Op, kind: StepKind, page: number): void;
  /** `pages`: what a clean-record call recorded, a consumer copied or a validation uploaded; `walk`: a helper's walk statistics. */
  opEnd(actor: Actor, op: Op, result: OpResult): void;
  /** Kernel-side work outside the actors' ops (early consumer, final sync); `run` returns its description. */
  action(label: string, run: () => string): void;
}

export interface OpResult {
  /** An access that found a lock held and stays pending. */
  blocked: boolean;
  pages: number;
  walk: HelperStats | null;
}

/** The state at a top-level decision point: the world and every actor's progress. */
export interface Checkpoint {
  world: WorldState;
  next: Int32Array;
  recorded: Int32Array;
  consumed: Int32Array;
  preemptions: number;
}

/** Work counters of the latest run (from its checkpoint to its end). */
export interface RunCounters {
  faults: { missing: number; wp: number; cow: number; dirty: number; spurious: number };
  dirtyBitSets: number;
  tlbFlushes: number;
  ipis: number;
}

/** What a probe puts back: the world, and the bookkeeping a probed op can change. */
interface ProbeState {
  world: WorldState;
  next: Int32Array;
  recorded: Int32Array;
  consumed: Int32Array;
  busy: Uint8Array;
  /** Per suspended frame: pages written while it ran (guarantee-b bookkeeping). */
  written: Int32Array;
  enabled: Int32Array;
  scalars: Float64Array;
}

interface Frame {
  actor: number;
  opIndex: number;
  op: Op;
  /** Step the op is suspended at (-1 before its first), the BO page and the step's detail. */
  kind: number;
  page: number;
  detail: number;
  /** Helper walks the op has started, and the latest one's live locals. */
  walks: number;
  walk: WalkLocals | null;
  /** Recording ops only: pages dirty (marked) at its start, written while it ran; clean-record's bitmap. */
  dirtyAtStart: number;
  written: number;
  bitmap: Bitmap | null;
  /** soft-dirty scan: the pages it read as soft-dirty, before clear_refs (-1 until then). */
  reported: number;
}

const IDLE_OP: Op = { kind: 'consume' };
const WRITE_DIRTY = PTE_WRITE | PTE_DIRTY;

export class Execution {
  readonly world: World;
  readonly hasher = new StateHasher();
  /** Choices at the current decision point: CONTINUE or actor indices. */
  readonly enabled: Int32Array;
  enabledCount = 0;
  /** Whether the current decision point is at top level (nothing suspended). */
  topLevel = true;
  /**
   * Bit per enabled actor whose next op is a CPU access that will hit in its
   * TLB (and its cache line): it reaches no step point and touches only that
   * CPU's TLB entry, cache line and byte of memory, so two of them commute
   * (the explorer's sleep sets rely on this).
   */
  atomicMask = 0;
  preemptions = 0;
  bound = 0;
  /** Accesses that found a lock held and will retry, in this run. */
  blockedAttempts = 0;
  /** The same over every run and probe of this Execution. */
  blockedTotal = 0;
  violation: Violation | null = null;
  /** Global hash of the state at the latest decision point (two lanes). */
  gA = 0;
  gB = 0;
  readonly counters: RunCounters = { faults: { missing: 0, wp: 0, cow: 0, dirty: 0, spurious: 0 }, dirtyBitSets: 0, tlbFlushes: 0, ipis: 0 };
  private readonly view: WorldView;
  private readonly actors: readonly Actor[];
  private readonly next: Int32Array;
  private readonly busy: Uint8Array;
  /** Per kernel actor: pages its last clean-record call recorded, and those the consumer has copied. */
  private readonly recorded: Int32Array;
  private readonly consumed: Int32Array;
  private readonly bitmaps: Bitmap[];
  private readonly frames: Frame[];
  private depth = 0;
  /** Suspended frames holding a PTE lock (at PteRead, CacheFlushed, PteCleared, PteCommitted). */
  private ptlHeld = 0;
  /** Suspended CPU accesses with a store in flight (at TlbFill). */
  private storesInFlight = 0;
  private readonly beforeFlush: boolean;
  private readonly locksInWalk: boolean;
  private readonly checked: (name: InvariantName) => boolean;
  private source: DecisionSource | null = null;
  /** Set while a probe runs (see probe()); the source then answers `probePruned` and throws PROBED. */
  probing = false;
  probePruned = false;
  private probeState: ProbeState | null = null;
  private tracer: ExecutionTracer | null = null;
  readonly initial: Checkpoint;

  constructor(readonly scenario: Scenario) {
    this.world = new World(scenario);
    this.view = new WorldView(this.world);
    this.actors = scenario.actors;
    const n = this.actors.length;
    this.enabled = new Int32Array(n + 1);
    this.next = new Int32Array(n);
    this.busy = new Uint8Array(n);
    this.recorded = new Int32Array(n);
    this.consumed = new Int32Array(n);
    this.bitmaps = Array.from({ length: n }, () => new Bitmap(this.world.pages));
    this.frames = Array.from({ length: n }, () => ({
      actor: -1, opIndex: -1, op: IDLE_OP, kind: -1, page: -1, detail: 0, walks: 0, walk: null, dirtyAtStart: 0, written: 0, bitmap: null, reported: -1,
    }));
    const o = scenario.options;
    this.beforeFlush = o.consumer === 'before-flush';
    this.locksInWalk = !o.plants.walkWithoutPteLock;
    const checked = new Set(checkedInvariants(o));
    this.checked = (name) => checked.has(name);
    this.initial = this.saveCheckpoint();
  }

  get remainingBudget(): number {
    return this.bound - this.preemptions;
  }

  /** Copy the state at a top-level decision point into `into` (reusing it) or a new checkpoint. */
  saveCheckpoint(into?: Checkpoint): Checkpoint {
    const cp = into ?? { world: this.world.save(), next: new Int32Array(this.next.length), recorded: new Int32Array(this.next.length), consumed: new Int32Array(this.next.length), preemptions: 0 };
    if (into !== undefined) this.world.save(cp.world);
    cp.next.set(this.next);
    cp.recorded.set(this.recorded);
    cp.consumed.set(this.consumed);
    cp.preemptions = this.preemptions;
    return cp;
  }

  /**
   * Run from `from` (default: the initial state) to the end, or until pruned
   * or an invariant fails, with at most `bound` preemptions in total.
   */
  run(bound: number, source: DecisionSource, tracer: ExecutionTracer | null = null, from: Checkpoint = this.initial): Outcome {
    this.restore(from);
    this.bound = bound;
    this.source = source;
    this.tracer = tracer;
    const machine = this.world.machine;
    const start = this.counterSnapshot();
    tracer?.attach(this.world);
    machine.stepHook = this.hook;
    machine.walkObserver = this.observeWalk;
    try {
      for (;;) {
        const a = this.choose(true);
        if (a === NONE) break;
        this.runOp(a, false);
      }
      machine.stepHook = null;
      machine.walkObserver = null;
      this.finalSync();
      return this.violation === null ? Outcome.Complete : Outcome.Violation;
    } catch (e) {
      if (e === PRUNE) return Outcome.Pruned;
      if (e === STOP) return Outcome.Violation;
      throw e;
    } finally {
      machine.stepHook = null;
      machine.walkObserver = null;
      machine.trace = null;
      this.countSince(start);
    }
  }

  /**
   * Look one step down choice `c` of the current decision point without
   * committing to it: run it up to the next decision point (where the source,
   * seeing `probing`, judges the state and throws PROBED), then put
   * everything back as it was — the world and the bookkeeping from a saved
   * copy, the JS stack by the exception. CONTINUE cannot be probed (the
   * suspended op's own stack would unwind). Returns whether the source judged
   * the state already explored; a violation on the way counts as not.
   */
  probe(c: number): boolean {
    const a = this.enabled[c]!;
    if (a === CONTINUE) throw new Error('explorer: CONTINUE cannot be probed');
    const p = this.saveProbeState();
    const top = this.topLevel;
    let pruned = false;
    this.probing = true;
    try {
      if (!top) this.preemptions++;
      this.runOp(a, !top);
      this.choose(top); // the next decision point throws PROBED; none left means a complete run: not pruned
    } catch (e) {
      if (e === PROBED) pruned = this.probePruned;
      else if (e !== STOP && e !== PRUNE) throw e;
    } finally {
      this.probing = false;
      this.restoreProbeState(p);
    }
    return pruned;
  }

  private saveProbeState(): ProbeState {
    const p = this.probeState ?? {
      world: this.world.save(), next: new Int32Array(this.next.length), recorded: new Int32Array(this.next.length), consumed: new Int32Array(this.next.length),
      busy: new Uint8Array(this.next.length), written: new Int32Array(this.next.length), enabled: new Int32Array(this.enabled.length),
      scalars: new Float64Array(12),
    };
    if (this.probeState !== null) this.world.save(p.world);
    this.probeState = p;
    p.next.set(this.next);
    p.recorded.set(this.recorded);
    p.consumed.set(this.consumed);
    p.busy.set(this.busy);
    p.enabled.set(this.enabled);
    for (let i = 0; i < this.depth; i++) p.written[i] = this.frames[i]!.written;
    const v = p.scalars;
    v[0] = this.preemptions;
    v[1] = this.blockedAttempts;
    v[2] = this.depth;
    v[3] = this.ptlHeld;
    v[4] = this.storesInFlight;
    v[5] = this.gA;
    v[6] = this.gB;
    v[7] = this.enabledCount;
    v[8] = this.atomicMask;
    v[9] = this.topLevel ? 1 : 0;
    this.probeState = null; // a probe inside a probe would overwrite it
    return p;
  }

  private restoreProbeState(p: ProbeState): void {
    this.world.restore(p.world);
    this.next.set(p.next);
    this.recorded.set(p.recorded);
    this.consumed.set(p.consumed);
    this.busy.set(p.busy);
    this.enabled.set(p.enabled);
    const v = p.scalars;
    this.preemptions = v[0]!;
    this.blockedAttempts = v[1]!;
    this.depth = v[2]!;
    this.ptlHeld = v[3]!;
    this.storesInFlight = v[4]!;
    this.gA = v[5]!;
    this.gB = v[6]!;
    this.enabledCount = v[7]!;
    this.atomicMask = v[8]!;
    this.topLevel = v[9] === 1;
    for (let i = 0; i < this.depth; i++) this.frames[i]!.written = p.written[i]!;
    this.violation = null;
    this.probeState = p;
  }

  /**
   * Hash the full state at the current decision point into the hasher: the
   * global hash plus every actor's progress, the consumers' bookkeeping and
   * the suspended frames' locals.
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
      h.word(f.page);
      h.word(f.detail);
      h.word(f.walks);
      h.word(f.dirtyAtStart);
      h.word(f.written);
      h.word(f.reported);
      const w = f.walk;
      if (w === null) continue;
      const c = w.pte;
      h.word(w.vmaIndex);
      h.word(w.total);
      h.word(c.flushStart);
      h.word(c.flushEnd);
      // Live only between the PTE test and the commit of the PTE being changed.
      if (f.kind === Step.PteRead || f.kind === Step.CacheFlushed || f.kind === Step.PteCleared) h.word(c.snapshot);
      if (f.kind === Step.PteCleared) h.word(c.held);
      w.digest?.(h);
      if (w.bitmap !== undefined) {
        h.word(w.start!);
        h.word(w.end!);
        const words = w.bitmap.words;
        for (let k = 0; k < words.length; k++) h.word(words[k]!);
      }
    }
  }

  /** The global hash (see hashGlobal) as one number, for sets of reached states. */
  globalKey(): number {
    this.hasher.begin(this.gA, this.gB);
    return this.hasher.key();
  }

  hashGlobal(): void {
    const h = this.hasher;
    h.begin();
    this.view.hashInto(h);
    this.gA = h.a;
    this.gB = h.b;
  }

  private restore(cp: Checkpoint): void {
    this.world.restore(cp.world);
    this.next.set(cp.next);
    this.recorded.set(cp.recorded);
    this.consumed.set(cp.consumed);
    this.preemptions = cp.preemptions;
    this.busy.fill(0);
    this.depth = 0;
    this.ptlHeld = 0;
    this.storesInFlight = 0;
    this.blockedAttempts = 0;
    this.violation = null;
  }

  /** Build the enabled list and ask the source. Returns an actor, CONTINUE, or NONE (top level, all done). */
  private choose(topLevel: boolean): number {
    let n = 0;
    let atomic = 0;
    const enabled = this.enabled;
    if (!topLevel) enabled[n++] = CONTINUE;
    if (topLevel || this.preemptions < this.bound) {
      const reserved = !topLevel && this.world.driver !== null && this.world.driver.bo.reservation.held;
      for (let a = 0; a < this.actors.length; a++) {
        const ops = this.actors[a]!.ops;
        if (this.busy[a] || this.next[a]! >= ops.length) continue;
        const op = ops[this.next[a]!]!;
        if (!topLevel && isKernelOp(op)) {
          if (this.storesInFlight > 0) continue;
          if (isWalkingOp(op) && this.ptlHeld > 0) continue;
          if (reserved && takesReservation(op)) continue;
          if ((op.kind === 'munmap' || op.kind === 'remap') && this.world.mapping.iMmapReaders > 0) continue;
          // munmap and mmap take the mmap lock for writing; a suspended tracker scan holds it for reading.
          if (op.kind === 'remap' && this.scanSuspended()) continue;
        }
        if ((op.kind === 'write' || op.kind === 'read') && this.hits(op)) atomic |= 1 << a;
        enabled[n++] = a;
      }
    }
    if (n === 0) return NONE;
    this.enabledCount = n;
    this.atomicMask = atomic;
    this.topLevel = topLevel;
    return enabled[this.source!.decide(this)]!;
  }

  private scanSuspended(): boolean {
    for (let i = 0; i < this.depth; i++) if (this.frames[i]!.op.kind === 'scan') return true;
    return false;
  }

  /** Whether an access will hit in its CPU's TLB (writes: a writable dirty entry) and cache line. */
  private hits(op: Extract<Op, { kind: 'write' | 'read' }>): boolean {
    const v = this.world.views[op.view]!;
    const cpu = this.world.machine.cpus[op.cpu]!;
    const vpn = this.world.vpnOf(v, op.page);
    const e = cpu.tlb.peek(v.mm.id, vpn);
    if (e === null || (op.kind === 'write' && (e & WRITE_DIRTY) !== WRITE_DIRTY)) return false;
    if (!(cpu instanceof VivtCpu)) return true;
    for (let l = 0; l < cpu.lines; l++) if (cpu.lineMm[l] === v.mm.id && cpu.lineVpn[l] === vpn) return true;
    return false;
  }

  private readonly observeWalk = (w: WalkLocals): void => {
    if (this.depth === 0) return;
    const f = this.frames[this.depth - 1]!;
    f.walk = w;
    f.walks++;
  };

  private readonly hook: StepHook = (kind, _actor, mm, vpn, detail) => {
    const f = this.frames[this.depth - 1]!;
    const page = vpn < 0 ? -1 : this.world.pageAt(mm, vpn);
    f.kind = kind;
    f.page = page;
    f.detail = detail;
    this.tracer?.stepReached(kind, page);
    const ptl = this.locksInWalk && (kind === Step.PteRead || kind === Step.CacheFlushed || kind === Step.PteCleared || kind === Step.PteCommitted);
    const store = kind === Step.TlbFill;
    if (ptl) this.ptlHeld++;
    if (store) this.storesInFlight++;
    if (kind === Step.BeforeVmaFlush && this.beforeFlush && isRecordingOp(f.op)) this.consumeEarly(f);
    for (;;) {
      const a = this.choose(false);
      if (a === CONTINUE) break;
      this.preemptions++;
      this.runOp(a, true);
    }
    if (ptl) this.ptlHeld--;
    if (store) this.storesInFlight--;
    this.tracer?.resumed(this.actors[f.actor]!, f.op, kind, page);
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
    f.page = -1;
    f.detail = 0;
    f.walks = 0;
    f.walk = null;
    f.dirtyAtStart = 0;
    f.written = 0;
    f.bitmap = null;
    f.reported = -1;
    this.busy[a] = 1;
    this.tracer?.opStart(actor, op, preempting);
    const world = this.world;
    let violation: Violation | null = null;
    let blocked = false;
    let pages = 0;
    // Walk statistics only matter to a trace; exploration skips the allocation.
    const walk = this.tracer === null || !isWalkingOp(op) ? null : newHelperStats();
    switch (op.kind) {
      case 'write':
      case 'read':
        try {
          if (op.kind === 'read') world.read(op);
          else {
            world.write(op);
            // Guarantee (b) bookkeeping: the write completed while these calls were running.
            for (let i = 0; i < this.depth - 1; i++) if (isRecordingOp(this.frames[i]!.op)) this.frames[i]!.written |= 1 << op.page;
          }
        } catch (e) {
          if (!(e instanceof AccessBlockedError)) throw e;
          blocked = true;
          this.blockedAttempts++;
          this.blockedTotal++;
        }
        break;
      case 'munmap':
        world.munmap(op.view);
        break;
      case 'remap':
        world.remap(op);
        break;
      case 'clean': {
        f.dirtyAtStart = world.dirtyMask(op.first, op.nr);
        const bitmap = this.bitmaps[a]!;
        bitmap.clearAll();
        f.bitmap = bitmap;
        this.recorded[a] = 0;
        this.consumed[a] = 0;
        world.clean(op, bitmap, walk ?? undefined);
        pages = bitmap.words[0]!;
        this.recorded[a] = pages;
        violation = checkRecordingReturn('clean-record', 'dirty', f.dirtyAtStart, f.written, pages, world.dirtyMask(op.first, op.nr), this.checked);
        break;
      }
      case 'scan': {
        f.dirtyAtStart = world.markedMask(op.first, op.nr);
        this.recorded[a] = 0;
        this.consumed[a] = 0;
        pages = world.scan(op, (read) => (f.reported = read));
        this.recorded[a] = pages;
        const marked = op.tracker === 'soft-dirty' ? 'soft-dirty' : 'written';
        violation = checkRecordingReturn(`the ${op.tracker} scan`, marked, f.dirtyAtStart, f.written & world.trackedMask, pages, world.markedMask(op.first, op.nr), this.checked);
        if (violation === null && this.checked('uffd-wp-writable')) violation = checkUffdWpWritable(world);
        break;
      }
      case 'wp':
        world.wp(op.first, op.nr, walk ?? undefined);
        if (this.checked('stale-writable-tlb')) violation = checkWpReturn(world, op.first, op.nr);
        break;
      case 'consume':
        pages = this.recorded[a]! & ~this.consumed[a]!;
        this.consumed[a]! |= pages;
        // Pages the recording op does not track are copied every time.
        pages |= ~world.trackedMask & ((1 << world.pages) - 1);
        world.copyToDevice(pages);
        break;
      case 'validate':
        pages = world.validate(op.resources, op.scan);
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
      const pages = (f.bitmap !== null ? f.bitmap.words[0]! : Math.max(f.reported, 0)) & ~this.consumed[f.actor]!;
      this.world.copyToDevice(pages);
      this.consumed[f.actor]! |= pages;
      return `consumer copies pages recorded so far ${pageList(pages)} before the deferred TLB flush`;
    };
    if (this.tracer === null) run();
    else this.tracer.action(this.actors[f.actor]!.label, run);
  }

  /** Quiescent sync: flush every cache, then the scenario's final ops (helper + consumer, or a validation); then compare with the oracle. */
  private finalSync(): void {
    const world = this.world;
    const act = (run: () => string): void => {
      if (this.tracer === null) run();
      else this.tracer.action('final', run);
    };
    act(() => {
      world.flushAllCaches();
      return 'quiescent sync: flush_cache_range over every mapping of the BO';
    });
    let recorded = 0;
    for (const op of this.scenario.finalSync) {
      act(() => {
        switch (op.kind) {
          case 'wp':
            world.wp(op.first, op.nr);
            return 'quiescent sync: wp_shared_mapping_range over the BO';
          case 'clean': {
            const bitmap = new Bitmap(world.pages);
            world.clean(op, bitmap);
            recorded |= bitmap.words[0]!;
            return `quiescent sync: ${op.order === 'deferred' ? '' : `${op.order} `}clean-record records ${pageList(recorded)}`;
          }
          case 'scan':
            recorded |= world.scan(op);
            return `quiescent sync: the ${op.tracker} scan reports ${pageList(recorded)}`;
          case 'validate':
            return `quiescent sync: validate every resource, uploads ${pageList(world.validate(op.resources, true))}`;
          default:
            recorded |= ~world.trackedMask & ((1 << world.pages) - 1);
            world.copyToDevice(recorded);
            return `quiescent sync: consumer copies ${pageList(recorded)} to the device`;
        }
      });
    }
    if (this.checked('uffd-wp-writable')) this.violation = checkUffdWpWritable(world);
    if (this.violation === null && this.checked('lost-write')) this.violation = checkDeviceCopy(world);
  }

  private readonly counterStart = new Float64Array(2 + 6 * 64);
  private readonly counterEnd = new Float64Array(2 + 6 * 64);

  private counterSnapshot(out = this.counterStart): Float64Array {
    const machine = this.world.machine;
    out[0] = machine.counters.tlbFlushes;
    out[1] = machine.counters.ipis;
    let i = 2;
    for (const cpu of machine.cpus) {
      const f = cpu.counters.faults;
      out[i++] = f.missing;
      out[i++] = f.wp;
      out[i++] = f.cow;
      out[i++] = f.dirty;
      out[i++] = f.spurious;
      out[i++] = cpu.counters.dirtyBitSets;
    }
    return out;
  }

  private countSince(start: Float64Array): void {
    const now = this.counterSnapshot(this.counterEnd);
    const c = this.counters;
    c.tlbFlushes = c.ipis = c.dirtyBitSets = 0;
    c.faults.missing = c.faults.wp = c.faults.cow = c.faults.dirty = c.faults.spurious = 0;
    c.tlbFlushes += now[0]! - start[0]!;
    c.ipis += now[1]! - start[1]!;
    for (let i = 2; i < 2 + 6 * this.world.machine.cpus.length; i += 6) {
      c.faults.missing += now[i]! - start[i]!;
      c.faults.wp += now[i + 1]! - start[i + 1]!;
      c.faults.cow += now[i + 2]! - start[i + 2]!;
      c.faults.dirty += now[i + 3]! - start[i + 3]!;
      c.faults.spurious += now[i + 4]! - start[i + 4]!;
      c.dirtyBitSets += now[i + 5]! - start[i + 5]!;
    }
  }
}
