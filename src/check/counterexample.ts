/**
 * Readable counterexamples: a schedule is replayed once with a tracer that
 * cuts the run into numbered steps — one per stretch an actor runs alone
 * (from an op's start or resume to its next step point or its end) — and
 * records, per step, the state that changed: PTEs, TLB entries (marked stale
 * when they allow more than the PTE), dirty cache lines (vivt), the first
 * bytes of memory and of the device copy; plus the TLB flushes, faults and
 * cache flushes the machine reported meanwhile.
 */
import { PTE_DIRTY, PTE_PRESENT, PTE_SOFT_DIRTY, PTE_UFFD_MARKER, PTE_UFFD_WP, PTE_WRITE, PTE_YOUNG } from '../core/pte.js';
import { STEP_NAMES, type StepKind, Step, type TraceEvent } from '../core/step.js';
import { VivtCpu } from '../core/vivt.js';
import type { ExecutionTracer, OpResult } from './execution.js';
import { type Violation, pageList } from './invariants.js';
import { type Actor, type Op, type Scenario, describeOp } from './scenario.js';
import { replaySchedule } from './schedule.js';
import { PAGE_SIZE, type World } from './world.js';

export interface StateChange {
  what: string;
  before: string;
  after: string;
}

export interface TraceStep {
  n: number;
  actor: string;
  text: string;
  changes: StateChange[];
  notes: string[];
}

export interface Counterexample {
  violation: Violation | null;
  schedule: string;
  preemptions: number;
  steps: TraceStep[];
  /** Non-empty state components when the run stopped. */
  finalState: StateChange[];
}

/** What each step point means, in kernel terms. */
const STEP_TEXT: Record<StepKind, string> = {
  [Step.TlbFill]: 'walked the page table and filled its TLB entry',
  [Step.DirtyBitSet]: 'is about to set D in the PTE (locked read-modify-write)',
  [Step.PteCleared]: 'ptep_modify_prot_start: read and cleared the PTE (PTE lock held)',
  [Step.PteCommitted]: 'ptep_modify_prot_commit: stored the new PTE (PTE lock held)',
  [Step.BeforeVmaFlush]: "post_vma: the VMA's PTEs are done, its deferred TLB flush is not issued yet",
  [Step.AfterVmaFlush]: "post_vma: past the VMA's deferred TLB flush",
  [Step.PteRead]: 'read the PTE and decided to change it; modify_prot_start next (PTE lock held)',
  [Step.CacheFlushed]: 'flush_cache_page done, the PTE still present; ptep_clear_flush next (PTE lock held)',
  [Step.MkwriteReturned]: 'page_mkwrite returned; the PTE is still read-only (finish_mkwrite_fault next)',
  [Step.BetweenCalls]: 'the pagemap read has returned; clear_refs is next (no lock held)',
  [Step.PteTableDone]: 'finished a PTE table and released its lock; the next table is next',
};

/** The same two points in clear_refs, which flushes the whole mm once after its walk. */
const CLEAR_REFS_TEXT: Partial<Record<StepKind, string>> = {
  [Step.BeforeVmaFlush]: 'clear_refs: every PTE is done and its lock released; the TLB flush of the whole mm is not issued yet',
  [Step.AfterVmaFlush]: 'clear_refs: past the TLB flush of the whole mm',
};

/** P W D A, and the trackers' bits: SD soft-dirty, WP uffd-wp (a "marker" keeps it on an unmapped page). */
function flags(pte: number): string {
  if (!(pte & PTE_PRESENT)) return pte === 0 ? 'none' : pte === PTE_UFFD_MARKER ? 'uffd-wp marker' : 'not present';
  return ['P', pte & PTE_WRITE ? 'W' : '', pte & PTE_DIRTY ? 'D' : '', pte & PTE_YOUNG ? 'A' : '', pte & PTE_SOFT_DIRTY ? 'SD' : '', pte & PTE_UFFD_WP ? 'WP' : '']
    .filter(Boolean).join(' ');
}

const bytes = (buf: Uint8Array, at: number, n: number): string => Array.from(buf.subarray(at, at + n), (b) => b.toString(16).padStart(2, '0')).join(' ');

class Tracer implements ExecutionTracer {
  readonly steps: TraceStep[] = [];
  private world: World | null = null;
  private before = new Map<string, string>();
  private actor = '';
  private text = '';
  private notes: string[] = [];
  private cpu = -1;
  private counters = [0, 0, 0];
  /**
   * A CPU access that reached a step point: its step is closed only if
   * something else runs there; if it simply continues, one access stays one
   * step (its step points are the machine's, not the reader's, concern).
   */
  private pendingEnd: string | null = null;
  /** Kind of the op that runs now (step texts depend on it). */
  private opKind: Op['kind'] | null = null;

  attach(world: World): void {
    this.world = world;
    world.machine.trace = (e) => this.event(e);
  }

  opStart(actor: Actor, op: Op, preempting: boolean): void {
    this.opKind = op.kind;
    this.begin(actor.label, `${describeOp(op)}${preempting ? ' [starts inside the suspended op]' : ''}`, op.kind === 'write' || op.kind === 'read' ? op.cpu : -1);
  }

  stepReached(kind: StepKind, pgoff: number): void {
    const text = `→ ${(this.opKind === 'scan' ? CLEAR_REFS_TEXT[kind] : undefined) ?? STEP_TEXT[kind]}${pgoff >= 0 ? ` (pgoff ${pgoff})` : ''} [${STEP_NAMES[kind]}]`;
    if (kind === Step.AfterVmaFlush && !this.notes.some((n) => n.startsWith('TLB flush'))) this.notes.push('no TLB flush issued: the window of PTEs this walk changed is empty');
    if (this.cpu >= 0) this.pendingEnd = text;
    else this.end(text);
  }

  resumed(actor: Actor, op: Op, kind: StepKind): void {
    this.opKind = op.kind;
    if (this.pendingEnd !== null) {
      this.pendingEnd = null;
      return;
    }
    this.begin(actor.label, `${describeOp(op)}, resuming after ${STEP_NAMES[kind]}`, op.kind === 'write' || op.kind === 'read' ? op.cpu : -1);
  }

  opEnd(_actor: Actor, op: Op, result: OpResult): void {
    const walk = result.walk;
    if (walk !== null && (op.kind === 'wp' || op.kind === 'clean')) this.notes.push(`walk_page_mapping visited ${walk.vmasWalked} VMA(s) and skipped ${walk.vmasSkipped}${this.world!.scenario.options.walkStops && walk.vmasSkipped > 0 ? ' (a skipped VMA ends the walk)' : ''}`);
    let text: string;
    if (op.kind === 'write' || op.kind === 'read') text = result.blocked ? '→ blocked: its fault waits for a lock (a PTE lock a walker holds, or the BO reservation); retried later' : op.kind === 'write' ? '→ the store is done' : '→ the load is done';
    else if (op.kind === 'clean') text = `→ returns, recorded ${pageList(result.pages)}`;
    else if (op.kind === 'scan') text = `→ returns, reported ${pageList(result.pages)}`;
    else if (op.kind === 'consume') text = `→ copied ${pageList(result.pages)} from memory`;
    else if (op.kind === 'validate') text = `→ uploaded ${pageList(result.pages)} from memory`;
    else text = '→ returns';
    this.end(text);
  }

  action(label: string, run: () => string): void {
    this.begin(label, '', -1);
    this.text = run();
    this.end('');
  }

  /** The current value of every traced state component. */
  snapshot(): Map<string, string> {
    const w = this.world!;
    const s = new Map<string, string>();
    const cpus = w.machine.cpus;
    const shared = w.views.filter((v) => v.tracked).length;
    w.views.forEach((v, i) => {
      const tag = w.views.length === 1 ? '' : !v.tracked ? 'private ' : shared === 1 ? 'shared ' : `map${i} `;
      for (let p = v.first; p < v.first + v.pages; p++) {
        const vpn = w.vpnOf(v, p);
        const pte = v.mm.readPte(vpn);
        s.set(`pte ${tag}p${p}`, flags(pte));
        for (const cpu of cpus) {
          const e = cpu.tlb.peek(v.mm.id, vpn);
          const stale = e !== null && ((e & PTE_WRITE && !(pte & PTE_WRITE)) || (e & PTE_DIRTY && !(pte & PTE_DIRTY)) || !(pte & PTE_PRESENT));
          s.set(`tlb cpu${cpu.id} ${tag}p${p}`, e === null ? '-' : `${flags(e)}${stale ? ' (stale)' : ''}`);
        }
        for (const cpu of cpus) {
          if (!(cpu instanceof VivtCpu) || !v.tracked) continue;
          s.set(`cache cpu${cpu.id} ${tag}p${p}`, cpu.dirtyLines(v.mm.id).includes(vpn) ? 'dirty line' : '-');
        }
      }
    });
    for (let p = 0; p < w.pages; p++) {
      s.set(`memory p${p}`, bytes(w.mapping.page(w.boOffset + p)!, 0, cpus.length));
      s.set(`device p${p}`, bytes(w.device, p * PAGE_SIZE, cpus.length));
    }
    const d = w.driver;
    if (d !== null) {
      const t = d.tracker;
      s.set('tracker', `${t.method.toUpperCase()} bits ${pageList(t.bitmap.words[0]!)} [${t.start},${t.end}) votes ${t.changeCount}`);
      s.set('reservation', d.bo.reservation.heldBy ?? 'free');
    }
    return s;
  }

  private begin(actor: string, text: string, cpu: number): void {
    if (this.pendingEnd !== null) {
      const text = this.pendingEnd;
      this.pendingEnd = null;
      this.end(text);
    }
    this.before = this.snapshot();
    this.actor = actor;
    this.text = text;
    this.notes = [];
    this.cpu = cpu;
    if (cpu >= 0) {
      const c = this.world!.machine.cpus[cpu]!.counters;
      this.counters = [c.tlbHits, c.tlbMisses, c.dirtyBitSets];
    }
  }

  private end(text: string): void {
    const after = this.snapshot();
    const changes: StateChange[] = [];
    for (const [what, a] of after) {
      const b = this.before.get(what)!;
      if (a !== b) changes.push({ what, before: b, after: a });
    }
    if (this.cpu >= 0) {
      const c = this.world!.machine.cpus[this.cpu]!.counters;
      const [hits, misses, dsets] = [c.tlbHits - this.counters[0]!, c.tlbMisses - this.counters[1]!, c.dirtyBitSets - this.counters[2]!];
      if (hits > 0 && misses === 0 && dsets === 0) this.notes.unshift('TLB hit: the access touched no PTE');
      else if (misses > 0) this.notes.unshift('TLB miss: page walk');
      if (dsets > 0) this.notes.push('the CPU set D in the PTE');
    }
    this.steps.push({ n: this.steps.length + 1, actor: this.actor, text: text === '' ? this.text : `${this.text} ${text}`, changes, notes: this.notes });
  }

  private event(e: TraceEvent): void {
    const w = this.world!;
    const view = w.views.find((v) => v.mm.id === e.mm) ?? w.views[0]!;
    const pg = (va: number): number => Math.floor(va / PAGE_SIZE) - view.baseVpn + view.first;
    const range = (start: number, end: number): string => (end === Infinity ? 'the whole mm' : `pgoffs [${pg(start)},${pg(end)})`);
    if (e.type === 'tlb-flush') this.notes.push(`TLB flush of ${range(e.start, e.end)} on ${e.targets.map((c) => `cpu${c}`).join(', ') || 'no CPU'}: ${e.dropped} entr${e.dropped === 1 ? 'y' : 'ies'} dropped`);
    else if (e.type === 'fault') this.notes.push(`cpu${e.cpu} takes a ${e.kind} fault at pgoff ${pg(e.address - (e.address % PAGE_SIZE))}`);
    else if (w.scenario.options.arch === 'vivt') this.notes.push(e.page ? `flush_cache_page pgoff ${pg(e.start)}` : `flush_cache_range ${range(e.start, e.end)}`);
  }
}

/** Replay `schedule` with full tracing. */
export function traceSchedule(scenario: Scenario, schedule: string): Counterexample {
  const tracer = new Tracer();
  const r = replaySchedule(scenario, schedule, tracer);
  const last = tracer.snapshot();
  const finalState = [...last].filter(([, v]) => v !== '-' && v !== 'none' && !/^(00 ?)+$/.test(v)).map(([what, v]) => ({ what, before: v, after: v }));
  return { violation: r.violation, schedule, preemptions: r.execution.preemptions, steps: tracer.steps, finalState };
}

export function formatCounterexample(cx: Counterexample): string[] {
  const out: string[] = [];
  out.push(cx.violation === null
    ? `schedule ${cx.schedule}: every invariant holds (${cx.steps.length} steps)`
    : `VIOLATION ${cx.violation.invariant}: ${cx.violation.message}`);
  out.push(`schedule (${cx.preemptions} preemption${cx.preemptions === 1 ? '' : 's'}): ${cx.schedule}`);
  const width = String(cx.steps.length).length;
  for (const s of cx.steps) {
    out.push(`${String(s.n).padStart(width)}. ${s.actor.padEnd(8)} ${s.text}`);
    const pad = ' '.repeat(width + 11);
    for (const c of s.changes) out.push(`${pad}${c.what}: ${c.before} → ${c.after}`);
    for (const note of s.notes) out.push(`${pad}· ${note}`);
  }
  out.push(`state when the run stopped: ${cx.finalState.map((c) => `${c.what}=${c.after}`).join('; ')}`);
  return out;
}
