import { Child } from './children.js';
import { WORKER_MAIN } from './paths.js';
import type { Job, JobResult } from '../worker.js';

const RESULT = 'result ';
const READY = 'ready';

/** Run a job in a fresh worker process and return its result (the worker exits after it). */
export async function runInWorker<J extends Job>(job: J): Promise<JobResult<J>> {
  const child = new Child(`worker ${job.kind}`, WORKER_MAIN, [JSON.stringify(job)]);
  try {
    return JSON.parse(await child.waitFor(RESULT)) as JobResult<J>;
  } finally {
    await child.close();
  }
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
};
