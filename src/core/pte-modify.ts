import type { Bitmap } from './bitmap.js';
import { InvalidArgumentError } from './errors.js';
import type { Machine } from './machine.js';
import type { Mm } from './mm.js';
import { PTE_WRITE } from './pte.js';
import { KERNEL_ACTOR, Step } from './step.js';

/**
 * The one way a walker changes a present PTE: ptep_modify_prot_start, then
 * ptep_modify_prot_commit of a value built from what start returned, with
 * the table's lock held by the walker. Start reads and clears the slot, so
 * the MMU cannot set A or D in it until the commit; building the new value
 * from the returned one keeps any A/D bit the MMU set after the walker first
 * read the PTE. Every user — the two mapping helpers, clear_refs,
 * UFFDIO_WRITEPROTECT and PAGEMAP_SCAN — goes through modifyPte, so all of
 * them offer the same step points and share the same planted bug
 * (MachineOptions.pteFromSnapshot).
 *
 * Per-PTE order. 'deferred' (the kernel's everywhere): the change only widens
 * the walker's flush window; the walker flushes the TLB later, once for many
 * PTEs, and until then a CPU may still write through a stale writable entry.
 * The strict orders (the page_mkclean rule, mapping helpers only) flush the
 * cache page and the TLB entry on every CPU for each PTE before storing a
 * value that is write-protected as well, so the next write faults: 'strict'
 * in the order of page_mkclean_one in mm/rmap.c (flush_cache_page,
 * ptep_clear_flush, wrprotect, mkclean, set_pte_at); 'strict-tlb-first' clears and flushes the TLB entry
 * before the cache page, so no CPU can write the page into its cache between
 * the two flushes (docs/fidelity.md shows that window on virtually indexed
 * caches).
 */

/** Per-PTE order of a change: the kernel's deferred flush, or one of the two strict orders. */
export type HelperOrder = 'deferred' | 'strict' | 'strict-tlb-first';
export const HELPER_ORDERS: readonly HelperOrder[] = ['deferred', 'strict', 'strict-tlb-first'];
const DEFERRED = 0;
const STRICT = 1;
const STRICT_TLB_FIRST = 2;

/** The HelperOrder checked and as the small integer PteChange keeps. */
function orderCode(order: HelperOrder): number {
  if (!HELPER_ORDERS.includes(order)) throw new InvalidArgumentError(`order must be one of ${HELPER_ORDERS.join(', ')}, got '${String(order)}'`);
  return order === 'deferred' ? DEFERRED : order === 'strict' ? STRICT : STRICT_TLB_FIRST;
}

/**
 * The PTE-changing state of one walk: its order, its deferred-flush window,
 * and the PTE it is changing. One class for every walker, so modifyPte
 * sees one hidden class whoever calls it.
 */
export class PteChange {
  /** Deferred-flush window in vpns; empty when `flushStart >= flushEnd`. */
  flushStart = 0;
  flushEnd = 0;
  /** The PTE value the walker tested, and the one modify_prot_start returned, for the PTE being changed. */
  snapshot = 0;
  held = 0;
  readonly order: number;
  /** Planted bug: build the new PTE from the snapshot (see MachineOptions.pteFromSnapshot). */
  readonly fromSnapshot: boolean;

  constructor(machine: Machine, order: HelperOrder = 'deferred', readonly initiator = -1) {
    this.order = orderCode(order);
    this.fromSnapshot = machine.config.pteFromSnapshot;
  }

  get deferred(): boolean {
    return this.order === DEFERRED;
  }

  /** Empty the flush window (inverted, so the first widen sets both ends). */
  resetWindow(startVpn: number, endVpn: number): void {
    this.flushStart = endVpn;
    this.flushEnd = startVpn;
  }

  /** Add vpn to the flush window (a change that needs the deferred flush). */
  widen(vpn: number): void {
    if (vpn < this.flushStart) this.flushStart = vpn;
    if (vpn + 1 > this.flushEnd) this.flushEnd = vpn + 1;
  }
}

/**
 * What a walk still holds in its locals at a step point, besides its
 * position (step kind, mm, vpn): enough to tell two suspended walks apart
 * exactly (Machine.walkObserver; src/check hashes it).
 */
export interface WalkLocals {
  /** PTEs (or pages) the walk has changed or reported so far. */
  readonly total: number;
  /** VMAs whose walk has begun so far. */
  readonly vmaIndex: number;
  readonly pte: PteChange;
  /** clean-record only: the bound being built, and the bitmap. */
  readonly start?: number;
  readonly end?: number;
  readonly bitmap?: Bitmap;
  /** Feeds whatever else the walk has gathered (a scan's regions so far) to `h`. */
  digest?(h: { word(w: number): void }): void;
}

/**
 * Replace table[index], which the caller read as `snapshot` and decided to
 * change, by itself with `set` added and `clear` removed, offering the step
 * points PteRead, (CacheFlushed,) PteCleared and PteCommitted. A deferred
 * change widens the flush window; a strict one flushes and write-protects.
 */
export function modifyPte(mm: Mm, table: Int32Array, index: number, vpn: number, snapshot: number, set: number, clear: number, c: PteChange): void {
  const machine = mm.machine;
  c.snapshot = snapshot;
  machine.step(Step.PteRead, KERNEL_ACTOR, mm, vpn);
  let old: number;
  let drop = clear;
  if (c.order === DEFERRED) {
    old = table[index]!;
    table[index] = 0;
    c.widen(vpn);
  } else {
    const va = vpn * mm.pageSize;
    if (c.order === STRICT) {
      machine.flushCachePage(mm, va);
      machine.step(Step.CacheFlushed, KERNEL_ACTOR, mm, vpn);
      // ptep_clear_flush
      old = table[index]!;
      table[index] = 0;
      machine.flushTlbPage(mm, va, c.initiator);
    } else {
      // Once no CPU can write through the old translation, the cache flush
      // captures the page's final data.
      old = table[index]!;
      table[index] = 0;
      machine.flushTlbPage(mm, va, c.initiator);
      machine.flushCachePage(mm, va);
    }
    drop |= PTE_WRITE;
  }
  c.held = old;
  machine.step(Step.PteCleared, KERNEL_ACTOR, mm, vpn);
  table[index] = ((c.fromSnapshot ? snapshot : old) | set) & ~drop;
  machine.step(Step.PteCommitted, KERNEL_ACTOR, mm, vpn);
}

/**
 * Run `walk`, then `flush`, as a walker that defers its TLB flush until its
 * PTE locks are released (clear_refs, UFFDIO_WRITEPROTECT): the mm's
 * flush-pending count stays raised until the flush is done, so a concurrent
 * walker that finds a PTE already changed knows a flush is still to come,
 * and the flush runs between the BeforeVmaFlush and AfterVmaFlush step
 * points. When the walk throws (a step hook abandoning a run), the flush
 * still runs, without step points.
 */
export function walkThenFlush(mm: Mm, walk: () => void, flush: () => void): void {
  const machine = mm.machine;
  mm.tlbFlushPending++;
  try {
    walk();
  } catch (e) {
    flush();
    mm.tlbFlushPending--;
    throw e;
  }
  machine.step(Step.BeforeVmaFlush, KERNEL_ACTOR, mm, -1);
  flush();
  machine.step(Step.AfterVmaFlush, KERNEL_ACTOR, mm, -1);
  mm.tlbFlushPending--;
}
