import { VgpuError } from '../core/index.js';

/** waitFor gave up: the condition did not hold within its timeout. */
export class WaitTimeoutError extends VgpuError {
  constructor(message: string) {
    super('ETIMEDOUT', message);
  }
}

export interface WaitOptions {
  /** Give up after this many ms (default 5000). */
  timeout?: number;
  /** Poll every this many ms (default 5). */
  interval?: number;
  /** What is awaited, for the error message (default 'condition'). */
  what?: string;
}

/**
 * Resolve once `condition` returns true (it may be async), polling; reject
 * with WaitTimeoutError after `timeout` ms. Its timer never keeps the process
 * alive on its own.
 */
export async function waitFor(condition: () => boolean | Promise<boolean>, opts: WaitOptions = {}): Promise<void> {
  const timeout = opts.timeout ?? 5000;
  const interval = opts.interval ?? 5;
  const deadline = performance.now() + timeout;
  for (;;) {
    if (await condition()) return;
    const left = deadline - performance.now();
    if (left <= 0) throw new WaitTimeoutError(`timed out after ${timeout} ms waiting for ${opts.what ?? 'condition'}`);
    await new Promise<void>((resolve) => setTimeout(resolve, Math.min(interval, left)));
  }
}
