/**
 * A worker thread of the parallel explorer (parallel.ts): searches the tasks
 * it is given against the shared state cache, and splits off part of its own
 * work when another worker runs dry.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CONTROL, type FromWorker, type ToWorker, type WorkerData } from './parallel.js';
import { buildScenario } from './scenario.js';
import { Search } from './search.js';
import { SharedVisitedStates } from './state.js';

const data = workerData as WorkerData;
const port = parentPort!;
const control = new Int32Array(data.control);
const progress = new Float64Array(data.progress);
const search = new Search(buildScenario(data.scenario), {
  bound: data.bound,
  visited: data.visited === null ? null : new SharedVisitedStates(data.visited),
  sleepSets: data.sleepSets,
});
Error.stackTraceLimit = 0;
const post = (m: FromWorker): void => port.postMessage(m);

let executions = 0;
/** Between executions: publish progress, obey stop, feed a hungry worker. */
function interrupt(): boolean {
  progress[data.index] = search.counts.interleavings;
  if ((++executions & 15) !== 0) return false;
  if (Atomics.load(control, CONTROL.stop) !== 0) return true;
  for (let h = Atomics.load(control, CONTROL.hungry); h > 0; h = Atomics.load(control, CONTROL.hungry)) {
    if (Atomics.compareExchange(control, CONTROL.hungry, h, h - 1) !== h) continue;
    const task = search.split();
    if (task === null) Atomics.add(control, CONTROL.hungry, 1);
    else post({ type: 'tasks', tasks: [task] });
    break;
  }
  return false;
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'exit') {
    progress[data.index] = search.counts.interleavings;
    post({ type: 'done', counts: search.counts });
    port.close();
    return;
  }
  if (search.failure === null && Atomics.load(control, CONTROL.stop) === 0) {
    search.begin(m.task);
    search.drain(interrupt);
    if (search.failure !== null) post({ type: 'violation', failure: search.failure });
  }
  progress[data.index] = search.counts.interleavings;
  post({ type: 'idle' });
});
post({ type: 'idle' });
