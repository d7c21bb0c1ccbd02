import { InvalidArgumentError, requireInteger } from './errors.js';

/**
 * One CPU's TLB: set-associative, tagged by (address-space id, virtual page),
 * caching the PTE value it was filled from (pfn + present/write/dirty bits).
 * Replacement is round-robin per set, so the same access sequence always
 * evicts the same entries. Everything is in typed arrays; a lookup allocates
 * nothing.
 */
export class Tlb {
  readonly size: number;
  readonly ways: number;
  readonly sets: number;
  readonly setMask: number;
  /** Address-space id per slot, -1 when the slot is empty. */
  readonly tagMm: Int32Array;
  readonly tagVpn: Int32Array;
  /** Cached PTE value per slot. */
  readonly entry: Int32Array;
  /** Next slot to replace, per set. */
  private readonly victim: Int32Array;
  /** tagMm, tagVpn, entry and victim are views of this one array (one copy saves or restores them all). */
  private readonly words: Int32Array;
  private live = 0;

  constructor(entries: number, ways: number) {
    requireInteger('TLB ways', ways, 1, 64);
    requireInteger('TLB entries', entries, ways, 1 << 20);
    const sets = entries / ways;
    if (!Number.isInteger(sets) || (sets & (sets - 1)) !== 0) {
      throw new InvalidArgumentError(`TLB entries / ways must be a power of two, got ${entries} / ${ways}`);
    }
    this.size = entries;
    this.ways = ways;
    this.sets = sets;
    this.setMask = sets - 1;
    this.words = new Int32Array(3 * entries + sets);
    this.tagMm = this.words.subarray(0, entries).fill(-1);
    this.tagVpn = this.words.subarray(entries, 2 * entries);
    this.entry = this.words.subarray(2 * entries, 3 * entries);
    this.victim = this.words.subarray(3 * entries);
  }

  /** Number of valid entries. */
  get liveEntries(): number {
    return this.live;
  }

  /** First slot of the set that (mm, vpn) maps to. */
  setBase(mmId: number, vpn: number): number {
    return ((vpn ^ (mmId << 4)) & this.setMask) * this.ways;
  }

  /** Slot holding (mm, vpn), or -1. */
  lookup(mmId: number, vpn: number): number {
    const base = ((vpn ^ (mmId << 4)) & this.setMask) * this.ways;
    for (let s = base, end = base + this.ways; s < end; s++) {
      if (this.tagVpn[s] === vpn && this.tagMm[s] === mmId) return s;
    }
    return -1;
  }

  /** Cache pte for (mm, vpn), replacing an existing entry for the same key. Returns the slot. */
  insert(mmId: number, vpn: number, pte: number): number {
    const existing = this.lookup(mmId, vpn);
    if (existing >= 0) {
      this.entry[existing] = pte;
      return existing;
    }
    const base = this.setBase(mmId, vpn);
    let slot = -1;
    for (let s = base; s < base + this.ways; s++) {
      if (this.tagMm[s] === -1) {
        slot = s;
        break;
      }
    }
    if (slot < 0) {
      const set = base / this.ways;
      slot = base + this.victim[set]!;
      this.victim[set] = (this.victim[set]! + 1) % this.ways;
    } else {
      this.live++;
    }
    this.tagMm[slot] = mmId;
    this.tagVpn[slot] = vpn;
    this.entry[slot] = pte;
    return slot;
  }

  drop(slot: number): void {
    if (this.tagMm[slot] !== -1) {
      this.tagMm[slot] = -1;
      this.live--;
    }
  }

  /** Invalidate (mm, vpn); returns entries dropped (0 or 1). */
  flushPage(mmId: number, vpn: number): number {
    const s = this.lookup(mmId, vpn);
    if (s < 0) return 0;
    this.drop(s);
    return 1;
  }

  /** Invalidate every entry of mm with vpn in [startVpn, endVpn); returns entries dropped. */
  flushRange(mmId: number, startVpn: number, endVpn: number): number {
    if (endVpn - startVpn <= this.sets) {
      let n = 0;
      for (let v = startVpn; v < endVpn; v++) n += this.flushPage(mmId, v);
      return n;
    }
    let n = 0;
    for (let s = 0; s < this.size; s++) {
      if (this.tagMm[s] === mmId && this.tagVpn[s]! >= startVpn && this.tagVpn[s]! < endVpn) {
        this.drop(s);
        n++;
      }
    }
    return n;
  }

  /** Invalidate every entry of mm; returns entries dropped. */
  flushMm(mmId: number): number {
    let n = 0;
    for (let s = 0; s < this.size; s++) {
      if (this.tagMm[s] === mmId) {
        this.drop(s);
        n++;
      }
    }
    return n;
  }

  /** Copy the TLB's state into `into` (reusing it) or a new object. */
  saveState(into?: TlbState): TlbState {
    const s = into ?? { words: new Int32Array(this.words.length), live: 0 };
    s.words.set(this.words);
    s.live = this.live;
    return s;
  }

  restoreState(s: TlbState): void {
    this.words.set(s.words);
    this.live = s.live;
  }

  /** Cached PTE value for (mm, vpn), or null. For inspection and invariant checks. */
  peek(mmId: number, vpn: number): number | null {
    const s = this.lookup(mmId, vpn);
    return s < 0 ? null : this.entry[s]!;
  }

  /** Every valid entry, for inspection. */
  *entries(): IterableIterator<{ mmId: number; vpn: number; pte: number }> {
    for (let s = 0; s < this.size; s++) {
      if (this.tagMm[s] !== -1) yield { mmId: this.tagMm[s]!, vpn: this.tagVpn[s]!, pte: this.entry[s]! };
    }
  }
}

/** A copy of a Tlb's state (saveState / restoreState). */
export interface TlbState {
  words: Int32Array;
  live: number;
}
