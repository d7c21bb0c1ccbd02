/** A wait that took longer than its bound: invariant (c). */
export class HangError extends Error {
  override readonly name = 'HangError';
  constructor(readonly what: string, readonly ms: number) {
    super(`${what} did not settle within ${ms} ms`);
  }
}

/**
 * `p`, or a HangError after `ms`. The timer is cleared as soon as p settles, so
 * a bounded wait never keeps the process alive. Every await of the soak goes
 * through this: nothing the driver or the device does can stall a run.
 */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HangError(what, ms)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Resolves once `cond()` holds, checking after every turn of the event loop
 * (socket events get in between); HangError after `ms`.
 */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new HangError(what, ms);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
