import { Child } from './children.js';
import { WORKER_MAIN } from './paths.js';
import type { Job, SteppedJob, StepResult } from '../worker.js';

const RESULT = 'result ';
const READY = 'ready';

/** A worker that measures one run of its job each time step() asks (see serveSteps in worker.ts). */
export interface SteppedWorker<J extends SteppedJob> {
  readonly child: Child;
  /** One measured run. */
  step(): Promise<StepResult<J>>;
  /** Ends the job (a writeback job verifies the device copy first) and waits for the process to exit. */
  end(): Promise<void>;
}

/** Start a stepped job in a fresh worker process; resolves once its warm-up runs are done. */
export async function startSteppedWorker<J extends SteppedJob>(job: J): Promise<SteppedWorker<J>> {
  const { child } = await startWorker(job);
  return {
    child,
    async step() {
      child.send(workerProtocol.RUN);
      return JSON.parse(await child.waitFor(RESULT)) as StepResult<J>;
    },
    async end() {
      child.send(workerProtocol.END);
      await child.waitFor(RESULT);
      await child.close();
    },
  };
}

/** Start a job that runs until closed (background load, a server); resolves once it reports ready. */
export async function startWorker(job: Job): Promise<{ child: Child; info: string }> {
  const child = new Child(`worker ${job.kind}`, WORKER_MAIN, [JSON.stringify(job)]);
  try {
    return { child, info: (await child.waitFor(READY)).trim() };
  } catch (e) {
    await child.close();
    throw e;
  }
}

/** What a worker prints; the counterpart of runInWorker / startWorker. */
export const workerProtocol = {
  result: (value: unknown): string => `${RESULT}${JSON.stringify(value)}`,
  ready: (info = ''): string => `${READY} ${info}`,
  /** Lines the runner sends a stepped worker: measure one run; finish. */
  RUN: 'run',
  END: 'end',
};
