/**
 * The explorer on several threads. The search starts on this thread; if it
 * is not done within `handoffMs` (small scenarios never leave), its remaining
 * work — the untried choices on its decision stack — becomes tasks for
 * `jobs` worker threads (check-worker.ts), which share one state cache in
 * shared memory. A worker that runs dry says so; a busy one then splits off
 * the shallowest untried choices of its own stack (search.ts, Search.split)
 * and hands them over through this thread. The search is over when every
 * worker is idle and no task is left.
 *
 * Every state is recorded when its exploration starts and explored to the end
 * by whoever started it, so a state another worker finds in the cache is
 * covered, and the handoff keeps the cache consistent: what the first search
 * recorded is either done or on its stack, which is what the tasks are.
 *
 * A violation stops every worker; the counterexample is then minimised on
 * this thread (explorer.ts), so the reported one does not depend on which
 * worker found a violation first.
 */
import { Worker } from 'node:worker_threads';
import { Execution } from './execution.js';
import { type ExploreOptions, type ExploreResult, Limits, explore, finish, minimise, validateExploreOptions } from './explorer.js';
import type { ScenarioOptions } from './scenario.js';
import { buildScenario } from './scenario.js';
import { type Failure, Search, type SearchCounts, type Task, addCounts, emptyCounts } from './search.js';
import { SharedVisitedStates, VisitedStates } from './state.js';

export interface ParallelOptions extends ExploreOptions {
  /**
   * Worker threads once the search is handed over (default 1: never). On the
   * 2-vCPU machine this was measured on, the handed-over search spends about
   * 1.7× the CPU time per interleaving (tasks re-execute their prefixes and
   * start without checkpoints), so two workers finish later than one thread
   * does (bench scenario 9).
   */
  jobs?: number;
  /** Run on this thread alone for this long before handing over (default 1000 ms: a new worker needs about that to warm up). */
  handoffMs?: number;
  /**
   * Slots of the shared state cache (a power of two; default: 2^22, 48 MiB,
   * or more when the search already found a sixteenth of that). Past three
   * quarters full, new states are explored unrecorded.
   */
  sharedStates?: number;
}

/** Messages between this thread and the workers. */
export type ToWorker = { type: 'task'; task: Task } | { type: 'exit' };
export type FromWorker =
  | { type: 'tasks'; tasks: Task[] }
  | { type: 'idle' }
  | { type: 'violation'; failure: Failure }
  | { type: 'done'; counts: SearchCounts };

/** Layout of the shared control block (Int32 words). */
export const CONTROL = { stop: 0, hungry: 1, words: 2 } as const;

export interface WorkerData {
  scenario: ScenarioOptions;
  bound: number;
  sleepSets: boolean;
  visited: SharedArrayBuffer | null;
  control: SharedArrayBuffer;
  progress: SharedArrayBuffer;
  index: number;
}

/** Explore `scenario`, on several threads when it takes longer than `handoffMs`. */
export async function exploreParallel(scenarioOptions: Partial<ScenarioOptions>, opts: ParallelOptions): Promise<ExploreResult> {
  validateExploreOptions(opts);
  const scenario = buildScenario(scenarioOptions);
  const jobs = opts.jobs ?? 1;
  if (!Number.isInteger(jobs) || jobs < 1) throw new RangeError(`jobs must be a positive integer, got ${jobs}`);
  if (jobs === 1 || opts.collectStates) return explore(scenario, opts);
  const t0 = performance.now();
  const limits = new Limits(opts, t0);
  const reduce = opts.reduce ?? true;
  const sleepSets = opts.sleepSets ?? reduce;
  const local = reduce ? new VisitedStates() : null;
  const exec = new Execution(scenario);
  const search = new Search(scenario, { bound: opts.bound, visited: local, sleepSets }, exec);
  const handoff = t0 + (opts.handoffMs ?? 1000);
  let handedOver = false;
  const traces = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const counts = emptyCounts();
  let failure: Failure | null;
  let states: number;
  try {
    search.runAll(() => {
      if (limits.reached(search.counts.interleavings, () => local?.size ?? 0, 'search', opts.bound)) return true;
      handedOver = performance.now() >= handoff;
      return handedOver;
    });
    addCounts(counts, search.counts);
    failure = search.failure;
    states = local?.size ?? 0;
    if (failure === null && handedOver && limits.stoppedBy === null) {
      const slots = opts.sharedStates ?? Math.max(1 << 22, 2 ** Math.ceil(Math.log2(16 * (local?.size ?? 0))));
      if (!Number.isInteger(slots) || (slots & (slots - 1)) !== 0 || slots < (local?.size ?? 0) * 2) throw new RangeError(`sharedStates must be a power of two above twice the states found so far, got ${slots}`);
      const shared = reduce ? new SharedVisitedStates(SharedVisitedStates.allocate(slots)) : null;
      if (shared !== null && local !== null) shared.absorb(local);
      const r = await runWorkers(scenario.options, opts, sleepSets, shared, search.splitAll(), jobs, limits, counts);
      failure = r;
      states = shared?.size ?? 0;
    }
    if (failure !== null && (opts.iterative ?? true)) {
      const m = minimise(scenario, exec, opts, failure, limits, counts);
      failure = m.failure;
    }
  } finally {
    Error.stackTraceLimit = traces;
  }
  return finish(counts, states, failure, limits, t0, opts.bound, handedOver ? jobs : 1, null);
}

async function runWorkers(
  scenario: ScenarioOptions, opts: ExploreOptions, sleepSets: boolean, shared: SharedVisitedStates | null, tasks: Task[], jobs: number, limits: Limits,
  counts: SearchCounts,
): Promise<Failure | null> {
  const control = new Int32Array(new SharedArrayBuffer(CONTROL.words * 4));
  const progress = new Float64Array(new SharedArrayBuffer(jobs * 8));
  const base = counts.interleavings;
  const queue = [...tasks];
  const idle: Worker[] = [];
  let failure: Failure | null = null;
  let running = 0;
  const workers: Worker[] = [];
  const done = new Promise<void>((resolve, reject) => {
    let finished = 0;
    const feed = (): void => {
      while (idle.length > 0 && queue.length > 0 && Atomics.load(control, CONTROL.stop) === 0) {
        const w = idle.pop()!;
        running++;
        w.postMessage({ type: 'task', task: queue.shift()! } satisfies ToWorker);
      }
      Atomics.store(control, CONTROL.hungry, queue.length === 0 ? idle.length : 0);
      const over = Atomics.load(control, CONTROL.stop) !== 0 || (queue.length === 0 && running === 0);
      if (over) for (const w of idle.splice(0)) w.postMessage({ type: 'exit' } satisfies ToWorker);
    };
    for (let i = 0; i < jobs; i++) {
      const data: WorkerData = { scenario, bound: opts.bound, sleepSets, visited: shared?.buffer ?? null, control: control.buffer as SharedArrayBuffer, progress: progress.buffer as SharedArrayBuffer, index: i };
      const w = new Worker(new URL('./check-worker.js', import.meta.url), { workerData: data });
      workers.push(w);
      w.on('message', (m: FromWorker) => {
        if (m.type === 'tasks') queue.push(...m.tasks);
        else if (m.type === 'idle') {
          running--;
          idle.push(w);
        } else if (m.type === 'violation') {
          failure ??= m.failure;
          Atomics.store(control, CONTROL.stop, 1);
        } else {
          addCounts(counts, m.counts);
          if (++finished === jobs) resolve();
          return;
        }
        feed();
      });
      w.on('error', (e) => {
        Atomics.store(control, CONTROL.stop, 1);
        reject(e);
      });
      w.on('exit', (code) => {
        if (code !== 0) reject(new Error(`check worker ${i} exited with code ${code}`));
      });
      running++; // until its first 'idle'
    }
  });
  // Limits and progress, from the workers' shared counters.
  const timer = setInterval(() => {
    let n = base;
    for (let i = 0; i < jobs; i++) n += progress[i]!;
    if (limits.reached(n, () => shared?.size ?? 0, 'search', opts.bound, jobs, true)) Atomics.store(control, CONTROL.stop, 1);
  }, 20);
  try {
    await done;
  } finally {
    clearInterval(timer);
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return failure;
}
