import { INVARIANTS } from './oracle.js';
import { FAULT_KINDS, type FaultKind } from './program.js';
import { Run, type RunOptions, type RunResult, type Violation } from './runner.js';

export interface SoakOptions extends RunOptions {
  /** First seed; runs use seed, seed + 1, … */
  seed: number;
  /** Stop after this many runs (default: no limit unless `seconds` is absent, then 100). */
  runs?: number;
  /** Stop starting runs after this many seconds. */
  seconds?: number;
  /** Run every seed this many times (replay reliability; default 1). */
  repeat?: number;
  /** Called after every run. */
  onRun?: (r: RunResult) => void;
}

/** Totals of a soak; `--json` prints this object. */
export interface SoakSummary {
  firstSeed: number;
  lastSeed: number;
  runs: number;
  steps: number;
  /** Faults injected, by kind, and their total. */
  faults: Record<FaultKind, number>;
  faultsInjected: number;
  flushesChecked: number;
  flushesRejected: number;
  flushesUnchecked: number;
  deviceWrites: number;
  readbacks: number;
  resyncs: number;
  lostPages: number;
  hangs: number;
  /** Most flushes, and most milliseconds, any run needed to become coherent after its faults stopped. */
  maxConvergeFlushes: number;
  maxConvergeMs: number;
  violations: Violation[];
  seconds: number;
}

export const DEFAULT_RUNS = 100;

/**
 * Run seeds one after another, each in a fresh world (its own device, machine
 * and driver, so no state crosses runs). While it runs, an unhandled
 * rejection or uncaught exception anywhere in the process is a violation of
 * the run in progress.
 */
export async function soak(opts: SoakOptions): Promise<SoakSummary> {
  const maxRuns = opts.runs ?? (opts.seconds === undefined ? DEFAULT_RUNS : Infinity);
  const deadline = opts.seconds === undefined ? Infinity : performance.now() + opts.seconds * 1000;
  const repeat = opts.repeat ?? 1;
  const s: SoakSummary = {
    firstSeed: opts.seed, lastSeed: opts.seed, runs: 0, steps: 0,
    faults: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>, faultsInjected: 0,
    flushesChecked: 0, flushesRejected: 0, flushesUnchecked: 0, deviceWrites: 0, readbacks: 0, resyncs: 0,
    lostPages: 0, hangs: 0, maxConvergeFlushes: 0, maxConvergeMs: 0, violations: [], seconds: 0,
  };
  let current: Run | null = null;
  // Between runs (a rejection noticed only after a run was counted) it is the last run's.
  const late = (kind: string, e: unknown): void => {
    s.violations.push({
      seed: s.lastSeed, step: -1, op: 'after the run', invariant: INVARIANTS.unhandled, replay: `vgpu-dirty soak --seed ${s.lastSeed} --runs 1 --trace`,
      message: `${kind}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
    });
  };
  const onRejection = (e: unknown): void => (current ? current.noteUnhandled('unhandled rejection', e) : late('unhandled rejection', e));
  const onException = (e: unknown): void => (current ? current.noteUnhandled('uncaught exception', e) : late('uncaught exception', e));
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  const t0 = performance.now();
  try {
    for (let i = 0; i < maxRuns && performance.now() < deadline; i++) {
      const seed = opts.seed + Math.floor(i / repeat);
      current = new Run(seed, opts);
      const r = await current.execute();
      // A rejection noticed only after the run's last await still belongs to it.
      await new Promise<void>((resolve) => setImmediate(resolve));
      current = null;
      add(s, r);
      opts.onRun?.(r);
    }
  } finally {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  }
  s.seconds = (performance.now() - t0) / 1000;
  return s;
}

function add(s: SoakSummary, r: RunResult): void {
  s.runs++;
  s.lastSeed = r.seed;
  s.steps += r.steps;
  for (const k of FAULT_KINDS) {
    s.faults[k] += r.faults[k] ?? 0;
    s.faultsInjected += r.faults[k] ?? 0;
  }
  s.flushesChecked += r.flushesChecked;
  s.flushesRejected += r.flushesRejected;
  s.flushesUnchecked += r.flushesUnchecked;
  s.deviceWrites += r.deviceWrites;
  s.readbacks += r.readbacks;
  s.resyncs += r.resyncs;
  s.lostPages += r.lostPages;
  s.hangs += r.hangs;
  s.maxConvergeFlushes = Math.max(s.maxConvergeFlushes, r.convergedAfter ?? 0);
  s.maxConvergeMs = Math.max(s.maxConvergeMs, Math.round(r.convergeMs ?? 0));
  if (r.violation !== null) s.violations.push(r.violation);
}
