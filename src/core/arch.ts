import type { Machine } from './machine.js';
import type { Mm } from './mm.js';

/**
 * What differs between the architectures the simulator models. The access
 * path and the helpers consult this instead of branching on a name.
 */
export interface ArchModel {
  readonly name: string;
  /** The MMU sets D in the PTE on the first write through a writable entry (x86). */
  readonly hardwareDirty: boolean;
  /** Lines of the per-CPU virtually indexed data cache; 0 = physically indexed (coherent, no flush needed). */
  readonly dataCacheLines: number;
  /** Write back (and drop) CPU cache lines of [start, end) of mm to memory. */
  flushCacheRange(machine: Machine, mm: Mm, start: number, end: number): void;
  /** Same for one page. */
  flushCachePage(machine: Machine, mm: Mm, va: number): void;
}

const noCacheFlush = (): void => {};

/** x86: hardware dirty bit, TLB caches write + dirty, physically indexed caches (cache flushes are no-ops). */
export const x86: ArchModel = {
  name: 'x86',
  hardwareDirty: true,
  dataCacheLines: 0,
  flushCacheRange: noCacheFlush,
  flushCachePage: noCacheFlush,
};

/** No hardware dirty bit: a writable clean page behaves as read-only and the first write faults so software sets D. */
export const swDirty: ArchModel = {
  name: 'sw-dirty',
  hardwareDirty: false,
  dataCacheLines: 0,
  flushCacheRange: noCacheFlush,
  flushCachePage: noCacheFlush,
};
