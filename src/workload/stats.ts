/**
 * The p-th percentile of ascending `sorted`, by nearest rank (the smallest
 * value with at least p % of the values at or below it); NaN when empty.
 * The main job and the benchmarks report latencies with this one definition.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
