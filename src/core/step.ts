import type { Mm } from './mm.js';

/**
 * Interleaving points. At each of these the running code calls the machine's
 * step hook (when one is installed), and the hook may run other CPUs'
 * accesses, or other helpers, right there. With no hook installed a step costs
 * one null check, and steps sit only on slow paths (never on a TLB hit).
 */
export const Step = {
  /**
   * A CPU has just inserted a TLB entry after a page walk. For a write, the
   * store itself is still pending here: no TLB shootdown can complete before
   * it lands (an IPI waits for the instruction), so a hook must not run a
   * flush-and-consume sequence at this point and then let the store land.
   */
  TlbFill: 0,
  /** A CPU is about to set D in an in-memory PTE through a writable clean entry (the locked RMW re-checks the PTE). */
  DirtyBitSet: 1,
  /** A helper has read-and-cleared a PTE (ptep_modify_prot_start); the slot is non-present; the PTE lock is held. */
  PteCleared: 2,
  /** A helper has stored the new PTE value; the PTE lock is still held. */
  PteCommitted: 3,
  /** A helper has finished a VMA's page tables and released their locks; its deferred TLB flush is not issued yet. */
  BeforeVmaFlush: 4,
  /** A helper has issued the VMA's TLB flush (or decided none is needed). */
  AfterVmaFlush: 5,
  /**
   * A helper has read a PTE (its snapshot) and decided to change it;
   * modify_prot_start has not run yet; the PTE lock is held. The MMU can still
   * set A/D in the PTE here, so a new value built from the snapshot instead of
   * from what modify_prot_start returns would lose them.
   */
  PteRead: 6,
  /**
   * Strict variant: flush_cache_page is done and the PTE is still present
   * (ptep_clear_flush comes next); the PTE lock is held. A CPU holding a TLB
   * entry can still write the page into its cache here.
   */
  CacheFlushed: 7,
  /**
   * page_mkwrite / pfn_mkwrite returned and released whatever it locked; the
   * PTE is still read-only (finish_mkwrite_fault comes next). No lock is held.
   */
  MkwriteReturned: 8,
  /**
   * User space is between two system calls of one tracker operation (the
   * soft-dirty scan reads pagemap, then writes clear_refs). No lock is held;
   * anything may run here.
   */
  BetweenCalls: 9,
  /**
   * A walker has finished a PTE table and released its lock (PAGEMAP_SCAN
   * has flushed the table's protected entries before that); the next table
   * of its range comes next. `vpn` is that table's first page. Only locks
   * above the page tables are held (i_mmap for the helpers, the mmap lock for
   * reading for a walk of one process).
   */
  PteTableDone: 10,
} as const;

export type StepKind = (typeof Step)[keyof typeof Step];

export const STEP_NAMES: readonly string[] = Object.keys(Step);

/** Actor id used by helpers and other kernel code not running on a simulated CPU. */
export const KERNEL_ACTOR = -1;

/**
 * Called at every step point. `actor` is the CPU id, or KERNEL_ACTOR for a
 * helper; `vpn` the virtual page concerned (-1 when none); `detail` the value
 * the suspended code still holds in a local and acts on when it resumes (the
 * PTE it filled or faulted on, the TLB entry it is about to update; 0 when
 * none). A helper's own locals are in its WalkLocals (Machine.walkObserver).
 */
export type StepHook = (kind: StepKind, actor: number, mm: Mm, vpn: number, detail: number) => void;

/** Events a trace sink receives (for counterexamples, pictures, tests of flush windows). */
export type TraceEvent =
  | { type: 'tlb-flush'; mm: number; start: number; end: number; targets: number[]; dropped: number; initiator: number }
  | { type: 'fault'; cpu: number; mm: number; address: number; kind: FaultKind }
  | { type: 'cache-flush'; mm: number; start: number; end: number; page: boolean };

export type FaultKind = 'missing' | 'wp' | 'cow' | 'dirty' | 'spurious';

export type TraceSink = (event: TraceEvent) => void;
