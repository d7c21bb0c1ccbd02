/** Median, min and max of a scenario's runs (the numbers every result row carries). */
export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) return { median: NaN, min: NaN, max: NaN, runs: 0 };
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, runs: s.length };
}

/** The one percentile definition of the project (nearest rank), shared with the main job. */
export { percentile } from '../../src/workload/stats.js';

/**
 * Run `once` `warmup` times without recording (the first calls run in V8's
 * interpreter and baseline tiers, which says nothing about steady state),
 * then `runs` times, returning what each recorded call returned.
 */
export async function repeat<T>(warmup: number, runs: number, once: (i: number) => T | Promise<T>): Promise<T[]> {
  for (let i = 0; i < warmup; i++) await once(-1 - i);
  const out: T[] = [];
  for (let i = 0; i < runs; i++) out.push(await once(i));
  return out;
}

/** Wall time of fn in nanoseconds (performance.now has µs resolution; callers time batches). */
export function timeNs(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) * 1e6;
}
