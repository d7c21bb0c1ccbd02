import { OutOfMemoryError, WouldDeadlockError } from './errors.js';
import { PTE_NONE } from './pte.js';

let layoutStamps = 0;

/** Entries per table at every level (x86-64: PAGE_SIZE / sizeof(pte_t) with 4 KiB pages). */
export const PTRS_PER_TABLE = 512;
export const TABLE_SHIFT = 9;
const TABLE_MASK = PTRS_PER_TABLE - 1;
/** Pages mapped by one PMD entry (one PTE table). */
export const PAGES_PER_PMD = PTRS_PER_TABLE;
/** Pages mapped by one PUD entry. */
export const PAGES_PER_PUD = PTRS_PER_TABLE * PTRS_PER_TABLE;
/** Virtual pages one address space can hold: 3 levels of 512 entries. */
export const MAX_VPN = PTRS_PER_TABLE * PAGES_PER_PUD;

/**
 * Three-level page table (PUD → PMD → PTE) of one simulated process. Each table
 * is its own Int32Array of 512 entries, so a reference to a PTE table stays
 * valid while other tables are allocated (walkers keep one across step points,
 * during which faults may populate other tables).
 *
 * Directory entries hold a 1-based table number (0 = empty). A huge leaf at
 * PMD or PUD level lives in the parallel *Leaf array; its directory slot is 0.
 * Walking a range therefore costs per populated table, not per address.
 */
export class PageTable {
  readonly pud = new Int32Array(PTRS_PER_TABLE);
  readonly pudLeaf = new Int32Array(PTRS_PER_TABLE);
  /** PMD tables by number - 1. */
  readonly pmdTables: Int32Array[] = [];
  readonly pmdLeaves: Int32Array[] = [];
  /** PTE tables by number - 1; a freed slot keeps an empty table for reuse. */
  readonly pteTables: Int32Array[] = [];
  /** Populated entries per PTE table (index = number - 1), to free empty tables. */
  private pteCounts: number[] = [];
  /** Per PTE table: slots at and above this are all empty (what saveState copies). */
  private reach: number[] = [];
  private freePte: number[] = [];
  /** Page-table lock per PTE table (index = number - 1): holder id + 1, or 0. */
  private ptl: number[] = [];
  /** Tables dropped by restoreState, reused before allocating new ones. */
  private readonly spare: Int32Array[] = [];
  /**
   * A stamp, unique across all page tables and time, taken by every change to
   * the directories (tables allocated or freed, huge leaves): equal stamps
   * mean equal directories.
   */
  private layout = ++layoutStamps;

  constructor(private readonly maxTables = 1 << 22) {}

  /** Copy the whole table state into `into` (reusing its arrays) or a new object. */
  saveState(into?: PageTableState): PageTableState {
    const s = into ?? { layout: -1, pud: new Int32Array(PTRS_PER_TABLE), pudLeaf: new Int32Array(PTRS_PER_TABLE), pmd: [], pmdLeaves: [], pte: [], reach: [], pteCounts: [], freePte: [], ptl: [] };
    if (s.layout !== this.layout) {
      s.layout = this.layout;
      s.pud.set(this.pud);
      s.pudLeaf.set(this.pudLeaf);
      copyTables(this.pmdTables, s.pmd, null);
      copyTables(this.pmdLeaves, s.pmdLeaves, null);
      copyNumbers(this.freePte, s.freePte);
    }
    const n = this.pteTables.length;
    for (let i = 0; i < n; i++) {
      const r = this.reach[i]!;
      let t = s.pte[i];
      if (t === undefined) s.pte.push((t = new Int32Array(PTRS_PER_TABLE)));
      for (let k = 0; k < r; k++) t[k] = this.pteTables[i]![k]!;
    }
    if (s.pte.length !== n) s.pte.length = n;
    copyNumbers(this.reach, s.reach);
    copyNumbers(this.pteCounts, s.pteCounts);
    copyNumbers(this.ptl, s.ptl);
    return s;
  }

  /**
   * Return to a saved state; tables allocated since are kept for reuse. The
   * directories are copied only when they differ (the layout stamps do), so
   * the common case copies the PTE tables alone.
   */
  restoreState(s: PageTableState): void {
    if (s.layout !== this.layout) {
      this.layout = s.layout;
      this.pud.set(s.pud);
      this.pudLeaf.set(s.pudLeaf);
      copyTables(s.pmd, this.pmdTables, this.spare);
      copyTables(s.pmdLeaves, this.pmdLeaves, this.spare);
      copyNumbers(s.freePte, this.freePte);
    }
    const n = s.pte.length;
    for (let i = 0; i < n; i++) {
      let t = this.pteTables[i];
      if (t === undefined) this.pteTables.push((t = this.freshTable()));
      const saved = s.pte[i]!;
      const r = s.reach[i]!;
      for (let k = 0; k < r; k++) t[k] = saved[k]!;
      for (let k = r, mine = this.reach[i] ?? 0; k < mine; k++) t[k] = 0;
    }
    while (this.pteTables.length > n) this.spare.push(this.pteTables.pop()!);
    copyNumbers(s.reach, this.reach);
    copyNumbers(s.pteCounts, this.pteCounts);
    copyNumbers(s.ptl, this.ptl);
  }

  /** Number of populated PTE tables. */
  get pteTableCount(): number {
    return this.pteTables.length - this.freePte.length;
  }

  /** The PTE table covering vpn, or null when none is populated. */
  pteTableOf(vpn: number): Int32Array | null {
    const n = this.pteTableNumber(vpn);
    return n === 0 ? null : this.pteTables[n - 1]!;
  }

  /** 1-based number of the PTE table covering vpn, or 0. */
  pteTableNumber(vpn: number): number {
    const p = this.pud[vpn >>> (2 * TABLE_SHIFT)]!;
    if (p === 0) return 0;
    return this.pmdTables[p - 1]![(vpn >>> TABLE_SHIFT) & TABLE_MASK]!;
  }

  /** The PTE at vpn, or PTE_NONE. */
  get(vpn: number): number {
    const t = this.pteTableOf(vpn);
    return t === null ? PTE_NONE : t[vpn & TABLE_MASK]!;
  }

  /**
   * Store a PTE, allocating tables on the way. Storing PTE_NONE into an absent
   * table is a no-op. Keeps the per-table population count.
   */
  set(vpn: number, pte: number): void {
    let n = this.pteTableNumber(vpn);
    if (n === 0) {
      if (pte === PTE_NONE) return;
      n = this.allocPteTable(vpn);
    }
    const t = this.pteTables[n - 1]!;
    const i = vpn & TABLE_MASK;
    const old = t[i]!;
    if (i >= this.reach[n - 1]! && pte !== PTE_NONE) this.reach[n - 1] = i + 1;
    if ((old === PTE_NONE) !== (pte === PTE_NONE)) this.pteCounts[n - 1]! += pte === PTE_NONE ? -1 : 1;
    t[i] = pte;
  }

  /** Huge leaf covering vpn at PMD level, or PTE_NONE. */
  pmdLeafOf(vpn: number): number {
    const p = this.pud[vpn >>> (2 * TABLE_SHIFT)]!;
    if (p === 0) return PTE_NONE;
    return this.pmdLeaves[p - 1]![(vpn >>> TABLE_SHIFT) & TABLE_MASK]!;
  }

  /** Install or clear a huge PMD leaf; the PMD slot must not hold a PTE table. */
  setPmdLeaf(vpn: number, leaf: number): void {
    this.layout = ++layoutStamps;
    const pmd = this.pmdTableFor(vpn);
    const j = (vpn >>> TABLE_SHIFT) & TABLE_MASK;
    if (this.pmdTables[pmd - 1]![j] !== 0) throw new OutOfMemoryError('PMD slot already holds a PTE table');
    this.pmdLeaves[pmd - 1]![j] = leaf;
  }

  pudLeafOf(vpn: number): number {
    return this.pudLeaf[vpn >>> (2 * TABLE_SHIFT)]!;
  }

  setPudLeaf(vpn: number, leaf: number): void {
    this.layout = ++layoutStamps;
    const i = vpn >>> (2 * TABLE_SHIFT);
    if (this.pud[i] !== 0) throw new OutOfMemoryError('PUD slot already holds a PMD table');
    this.pudLeaf[i] = leaf;
  }

  /** Release PTE tables in [startVpn, endVpn) that hold no entry any more. */
  freeEmptyTables(startVpn: number, endVpn: number): void {
    for (let v = startVpn - (startVpn & TABLE_MASK); v < endVpn; v += PTRS_PER_TABLE) {
      const p = this.pud[v >>> (2 * TABLE_SHIFT)]!;
      if (p === 0) continue;
      const pmd = this.pmdTables[p - 1]!;
      const j = (v >>> TABLE_SHIFT) & TABLE_MASK;
      const n = pmd[j]!;
      if (n !== 0 && this.pteCounts[n - 1] === 0 && this.ptl[n - 1] === 0) {
        pmd[j] = 0;
        this.freePte.push(n);
        this.layout = ++layoutStamps;
      }
    }
  }

  /** Take the lock of PTE table n for holder h (`h >= 0`). */
  lockTable(n: number, holder: number): void {
    if (this.ptl[n - 1] !== 0) {
      throw new WouldDeadlockError(`page-table lock of table ${n} is held by walker ${this.ptl[n - 1]! - 1}`);
    }
    this.ptl[n - 1] = holder + 1;
  }

  unlockTable(n: number): void {
    this.ptl[n - 1] = 0;
  }

  /** True when the PTE table covering vpn is locked by a walker. */
  isLocked(vpn: number): boolean {
    const n = this.pteTableNumber(vpn);
    return n !== 0 && this.ptl[n - 1] !== 0;
  }

  /**
   * Visit every populated PTE table overlapping [startVpn, endVpn), with the
   * slots [from, to) of that table that lie in the range (vpn = baseVpn + slot).
   */
  forEachPteTable(
    startVpn: number,
    endVpn: number,
    fn: (table: Int32Array, from: number, to: number, baseVpn: number) => void,
  ): void {
    let v = startVpn;
    while (v < endVpn) {
      const i = v >>> (2 * TABLE_SHIFT);
      const p = this.pud[i]!;
      if (p === 0) {
        v = (i + 1) * PAGES_PER_PUD;
        continue;
      }
      const pmd = this.pmdTables[p - 1]!;
      const n = pmd[(v >>> TABLE_SHIFT) & TABLE_MASK]!;
      const base = v - (v & TABLE_MASK);
      if (n !== 0) fn(this.pteTables[n - 1]!, v - base, Math.min(endVpn - base, PTRS_PER_TABLE), base);
      v = base + PTRS_PER_TABLE;
    }
  }

  private pmdTableFor(vpn: number): number {
    const i = vpn >>> (2 * TABLE_SHIFT);
    let p = this.pud[i]!;
    if (p === 0) {
      if (this.pudLeaf[i] !== PTE_NONE) throw new OutOfMemoryError('PUD slot holds a huge leaf');
      this.layout = ++layoutStamps;
      this.pmdTables.push(this.freshTable());
      this.pmdLeaves.push(this.freshTable());
      p = this.pmdTables.length;
      this.pud[i] = p;
    }
    return p;
  }

  private freshTable(): Int32Array {
    const t = this.spare.pop();
    if (t === undefined) return new Int32Array(PTRS_PER_TABLE);
    t.fill(0);
    return t;
  }

  private allocPteTable(vpn: number): number {
    const pmd = this.pmdTableFor(vpn);
    const j = (vpn >>> TABLE_SHIFT) & TABLE_MASK;
    if (this.pmdLeaves[pmd - 1]![j] !== PTE_NONE) throw new OutOfMemoryError('PMD slot holds a huge leaf');
    let n: number;
    if (this.freePte.length > 0) {
      n = this.freePte.pop()!;
    } else {
      if (this.pteTables.length >= this.maxTables) throw new OutOfMemoryError('page-table pool exhausted');
      this.pteTables.push(this.freshTable());
      this.pteCounts.push(0);
      this.reach.push(0);
      this.ptl.push(0);
      n = this.pteTables.length;
    }
    this.pmdTables[pmd - 1]![j] = n;
    this.layout = ++layoutStamps;
    return n;
  }
}

/** A copy of a PageTable's state (saveState / restoreState). */
export interface PageTableState {
  /** The layout stamp of the directories copied (-1: none yet). */
  layout: number;
  pud: Int32Array;
  pudLeaf: Int32Array;
  pmd: Int32Array[];
  pmdLeaves: Int32Array[];
  /** PTE tables, valid below reach[i] (the rest is empty). */
  pte: Int32Array[];
  reach: number[];
  pteCounts: number[];
  freePte: number[];
  ptl: number[];
}

/** Make `to` a copy of `from`, reusing its tables; surplus tables go to `spare` when given. */
function copyTables(from: readonly Int32Array[], to: Int32Array[], spare: Int32Array[] | null): void {
  for (let i = 0; i < from.length; i++) {
    let t = to[i];
    if (t === undefined) {
      t = spare?.pop() ?? new Int32Array(PTRS_PER_TABLE);
      to.push(t);
    }
    t.set(from[i]!);
  }
  while (to.length > from.length) {
    const t = to.pop()!;
    spare?.push(t);
  }
}

function copyNumbers(from: readonly number[], to: number[]): void {
  if (to.length !== from.length) to.length = from.length;
  for (let i = 0; i < from.length; i++) to[i] = from[i]!;
}
