import type { PageRegion, Vma } from '../../core/index.js';
import type { Bo } from '../bo.js';
import type { DirtyRecord } from './record.js';

/**
 * Every CPU mapping of BO pages [from, to): fn(vma, start, end) with the
 * VA range [start, end) of the VMA that maps them, in the mapping's walk
 * order. The list is taken first, so fn may split the VMA it is given.
 */
export function forEachBoMapping(bo: Bo, from: number, to: number, fn: (vma: Vma, start: number, end: number) => void): void {
  if (from >= to) return;
  const first = bo.offset + from;
  const last = bo.offset + to;
  const parts = bo.mapping.vmasIntersecting(first, to - from).map((v) => [v, v.addressOf(Math.max(first, v.pgoff)), v.addressOf(Math.min(last, v.pgoffEnd))] as const);
  for (const [v, s, e] of parts) fn(v, s, e);
}

/** The processes that map any page of bo, each once. */
export function mmsMapping(bo: Bo): Set<Vma['mm']> {
  const out = new Set<Vma['mm']>();
  forEachBoMapping(bo, 0, bo.pages, (v) => out.add(v.mm));
  return out;
}

/** Record the VA regions a PAGEMAP_SCAN of `vma` reported as BO pages; returns the pages. */
export function recordRegions(record: DirtyRecord, bo: Bo, vma: Vma, regions: readonly PageRegion[]): number {
  let n = 0;
  for (const r of regions) {
    const from = vma.pgoffAt(r.start) - bo.offset;
    const to = vma.pgoffAt(r.end - 1) + 1 - bo.offset;
    record.markDirty(Math.max(0, from), Math.min(bo.pages, to));
    n += to - from;
  }
  return n;
}
