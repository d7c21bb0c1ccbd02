import { InvalidArgumentError } from './errors.js';
import type { Mapping } from './mapping.js';
import type { Mm } from './mm.js';
import { PAGES_PER_PMD, PAGES_PER_PUD, PTRS_PER_TABLE } from './pagetable.js';
import { PTE_NONE } from './pte.js';
import { KERNEL_ACTOR, Step } from './step.js';
import type { Vma } from './vma.js';

/** test_walk return value meaning "do not walk this VMA". */
export const WALK_SKIP = 1;

/** Per-walk state handed to every callback (struct mm_walk). */
export interface MmWalk<P> {
  vma: Vma;
  mm: Mm;
  readonly private: P;
}

/**
 * Callbacks of a page walk (struct mm_walk_ops). Addresses are VAs of the
 * VMA being walked; PTEs are given as (table, index, vpn) so a callback can
 * read and store the entry in place while the walker holds the table's lock.
 */
export interface WalkOps<P> {
  /** 0: walk the VMA; WALK_SKIP: skip it; negative: abort the walk with that value. */
  testWalk?(vma: Vma, walk: MmWalk<P>): number;
  /** Before the VMA's page tables, with the clipped VA range; non-zero aborts without postVma. */
  preVma?(start: number, end: number, walk: MmWalk<P>): number;
  /** A huge PMD/PUD leaf overlapping the range. The walker never splits or descends into it. */
  hugeEntry?(leaf: number, vpn: number, pages: number, walk: MmWalk<P>): void;
  /**
   * PTE slots of a populated PTE table in range; non-zero stops the walk.
   * With `pteMask` set, only slots with one of those bits set are offered:
   * the test runs inline in the walk loop, so a walk that finds little to do
   * costs a load and an AND per PTE instead of a (possibly polymorphic) call.
   */
  pteEntry?(table: Int32Array, index: number, vpn: number, walk: MmWalk<P>): number;
  /** Bits a PTE needs for pteEntry to see it (0 or absent: every slot). */
  pteMask?: number;
  /**
   * A populated PTE table's slots [from, to) in range (vpn = baseVpn + slot),
   * with the table's lock held: the pmd_entry of walk_page_range users that
   * treat a table as a unit (PAGEMAP_SCAN flushes per table). Replaces
   * pteEntry when present; non-zero stops the walk.
   */
  pteTable?(table: Int32Array, from: number, to: number, baseVpn: number, walk: MmWalk<P>): number;
  /** Part of the range [startVpn, endVpn) with no PTE table (pte_hole); non-zero stops the walk. */
  pteHole?(startVpn: number, endVpn: number, walk: MmWalk<P>): number;
  /** After the VMA's page tables, unconditionally once preVma succeeded. */
  postVma?(walk: MmWalk<P>): void;
}

export interface WalkOptions {
  /** Kernel-faithful: a VMA skipped by testWalk ends the whole walk (see MachineOptions). */
  stopAtSkippedVma: boolean;
}

let nextWalker = 0;

/**
 * walk_page_mapping: walk the PTEs of every VMA (of any process) that maps
 * part of pgoffs [firstIndex, firstIndex + nr) of `mapping`, in i_mmap order.
 * Each VMA's window is clipped to the pgoff range. Returns 0, or the first
 * non-zero value a callback returned (negative testWalk, preVma, pteEntry).
 */
export function walkPageMapping<P>(
  mapping: Mapping,
  firstIndex: number,
  nr: number,
  ops: WalkOps<P>,
  priv: P,
  opts: WalkOptions = { stopAtSkippedVma: mapping.machine.config.walkStopsAtSkippedVma },
): number {
  if (!Number.isInteger(firstIndex) || !Number.isInteger(nr) || firstIndex < 0 || nr < 1) {
    throw new InvalidArgumentError(`page walk range ${firstIndex}+${nr} is empty or negative`);
  }
  const walker = nextWalker++;
  const last = firstIndex + nr;
  for (const vma of mapping.vmasIntersecting(firstIndex, nr)) {
    const cba = Math.max(firstIndex, vma.pgoff);
    const cea = Math.min(last, vma.pgoffEnd);
    if (cba >= cea) continue;
    const walk: MmWalk<P> = { vma, mm: vma.mm, private: priv };
    const t = ops.testWalk ? ops.testWalk(vma, walk) : 0;
    if (t > 0) {
      if (opts.stopAtSkippedVma) break;
      continue;
    }
    if (t < 0) return t;
    const start = vma.addressOf(cba);
    const end = vma.addressOf(cea);
    if (ops.preVma) {
      const e = ops.preVma(start, end, walk);
      if (e !== 0) return e;
    }
    let r: number;
    try {
      r = walkRange(vma.mm, start / vma.mm.pageSize, end / vma.mm.pageSize, ops, walk, walker);
    } catch (e) {
      // A callback or step hook threw. postVma still runs, since it owns the
      // deferred TLB flush and the flush-pending count, but offers no step
      // points while the exception unwinds.
      const machine = vma.mm.machine;
      const hook = machine.stepHook;
      machine.stepHook = null;
      try {
        ops.postVma?.(walk);
      } finally {
        machine.stepHook = hook;
      }
      throw e;
    }
    ops.postVma?.(walk);
    if (r !== 0) return r;
  }
  return 0;
}

/**
 * walk_page_range: walk [start, end) of one mm, VMA by VMA in address order,
 * each clipped to the range. Unlike walkPageMapping a VMA that testWalk skips
 * does not end the walk, and gaps between VMAs are not offered to pteHole.
 * Returns 0, or the first non-zero value a callback returned.
 */
export function walkPageRange<P>(mm: Mm, start: number, end: number, ops: WalkOps<P>, priv: P): number {
  const ps = mm.pageSize;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || start % ps !== 0 || end % ps !== 0 || end < start) {
    throw new InvalidArgumentError(`page walk range 0x${start.toString(16)}-0x${end.toString(16)} is not page aligned`);
  }
  const walker = nextWalker++;
  // A callback may split VMAs (a walk that changes protection of part of one); iterate over a snapshot.
  for (const vma of mm.vmas.filter((v) => v.start < end && v.end > start)) {
    const walk: MmWalk<P> = { vma, mm, private: priv };
    const t = ops.testWalk ? ops.testWalk(vma, walk) : 0;
    if (t > 0) continue;
    if (t < 0) return t;
    const s = Math.max(start, vma.start);
    const e = Math.min(end, vma.end);
    if (ops.preVma) {
      const r = ops.preVma(s, e, walk);
      if (r !== 0) return r;
    }
    let r: number;
    try {
      r = walkRange(mm, s / ps, e / ps, ops, walk, walker);
    } finally {
      ops.postVma?.(walk);
    }
    if (r !== 0) return r;
  }
  return 0;
}

/** Walk [sv, ev) of one mm: huge leaves go to hugeEntry, PTE tables are locked one at a time. */
function walkRange<P>(mm: Mm, sv: number, ev: number, ops: WalkOps<P>, walk: MmWalk<P>, walker: number): number {
  const pt = mm.pageTable;
  const pteEntry = ops.pteEntry;
  const pteTable = ops.pteTable;
  const mask = ops.pteMask || -1;
  const machine = mm.machine;
  const lock = machine.config.walkTakesPteLock;
  let v = sv;
  while (v < ev) {
    const pudIdx = Math.floor(v / PAGES_PER_PUD);
    const pudNext = (pudIdx + 1) * PAGES_PER_PUD;
    const pudLeaf = pt.pudLeaf[pudIdx]!;
    if (pudLeaf !== PTE_NONE) {
      ops.hugeEntry?.(pudLeaf, pudIdx * PAGES_PER_PUD, PAGES_PER_PUD, walk);
      v = pudNext;
      continue;
    }
    const p = pt.pud[pudIdx]!;
    if (p === 0) {
      if (ops.pteHole) {
        const r = ops.pteHole(v, Math.min(ev, pudNext), walk);
        if (r !== 0) return r;
      }
      v = pudNext;
      continue;
    }
    const pmd = pt.pmdTables[p - 1]!;
    const leaves = pt.pmdLeaves[p - 1]!;
    const stop = Math.min(ev, pudNext);
    while (v < stop) {
      const j = Math.floor(v / PAGES_PER_PMD) % PTRS_PER_TABLE;
      const base = v - (v % PAGES_PER_PMD);
      const next = base + PAGES_PER_PMD;
      if (leaves[j] !== PTE_NONE) {
        ops.hugeEntry?.(leaves[j]!, base, PAGES_PER_PMD, walk);
      } else if (pmd[j] !== 0 && pteTable) {
        const n = pmd[j]!;
        pt.lockTable(n, walker);
        let r: number;
        try {
          r = pteTable(pt.pteTables[n - 1]!, v - base, Math.min(stop, next) - base, base, walk);
        } finally {
          pt.unlockTable(n);
        }
        if (r !== 0) return r;
        if (next < ev) machine.step(Step.PteTableDone, KERNEL_ACTOR, mm, next);
      } else if (pmd[j] === 0 && ops.pteHole) {
        const r = ops.pteHole(v, Math.min(stop, next), walk);
        if (r !== 0) return r;
      } else if (pmd[j] !== 0 && pteEntry) {
        const n = pmd[j]!;
        const table = pt.pteTables[n - 1]!;
        const to = Math.min(stop, next) - base;
        if (lock) pt.lockTable(n, walker);
        try {
          for (let i = v - base; i < to; i++) {
            if ((table[i]! & mask) === 0) continue;
            const r = pteEntry(table, i, base + i, walk);
            if (r !== 0) return r;
          }
        } finally {
          if (lock) pt.unlockTable(n);
        }
        if (next < ev) machine.step(Step.PteTableDone, KERNEL_ACTOR, mm, next);
      }
      v = next;
    }
  }
  return 0;
}
