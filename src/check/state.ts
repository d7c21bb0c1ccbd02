/**
 * Cheap state hashing for the explorer: two independent 32-bit lanes (a
 * murmur3-style word mix and an FNV-1a-style one with a fold) over the
 * machine's typed-array state, used together as a 64-bit key. With the state
 * counts the explorer reaches (tens of millions at most), the chance that two
 * distinct states share a key — which would wrongly prune one — stays below
 * 10^-4 per exploration.
 *
 * What the global hash covers is everything that can influence the future of
 * an execution, with per-execution identities (mm ids, pfns) replaced by
 * stable indices:
 *  - every PTE of every view of the BO, each mm's deferred-flush counter,
 *    VMA count and VMA flags (not its cpumask: a CPU with no entries of the
 *    mm behaves the same in it or out of it; only the IPI count differs);
 *  - each CPU's TLB entry for every (view, page) the scenario can touch (the
 *    TLB never evicts, see world.ts, so its contents are its whole state);
 *  - vivt: each CPU's cache lines (tag, dirty, data) and replacement pointer;
 *  - memory, the oracle and the device copy (one word per page holds all data, see scenario.ts);
 *  - driver: the tracker's bitmap, bounds, method and vote, and whether the reservation is held.
 * Hashing allocates nothing.
 */
import type { Mm } from '../core/mm.js';
import { VivtCpu } from '../core/vivt.js';
import { PAGE_SIZE, type World } from './world.js';

const WORDS_PER_PAGE = PAGE_SIZE / 4;

export class StateHasher {
  a = 0;
  b = 0;

  begin(seedA = 0x2f0a1b3c, seedB = 0x811c9dc5): void {
    this.a = seedA;
    this.b = seedB;
  }

  word(w: number): void {
    let k = Math.imul(w | 0, 0xcc9e2d51);
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
    const a = this.a ^ k;
    this.a = (Math.imul((a << 13) | (a >>> 19), 5) + 0xe6546b64) | 0;
    const b = Math.imul(this.b ^ w, 0x01000193);
    this.b = b ^ (b >>> 15);
  }

  /** Finalise both lanes into one safe-integer key. */
  key(): number {
    return (fmix(this.a) >>> 0) * 0x200000 + (fmix(this.b) >>> 11);
  }
}

/** What VisitedStates.visit returns when the state needs no more exploring. */
export const PRUNED = -1;
const SLEEP_SHIFT = 8;
const BUDGET_MASK = 0xff;

/**
 * The explorer's visited set: 64-bit state keys (two finalised lanes) mapped
 * to how the state was explored: the largest preemption budget left, and the
 * sleep set (actors whose moves were known to be covered elsewhere, so not
 * explored from it). Open addressing over typed arrays, so a lookup allocates
 * nothing and the table costs 12 bytes a slot instead of a Map entry per state.
 */
export class VisitedStates implements StateCache {
  private keysA = new Int32Array(1 << 12);
  private keysB = new Int32Array(1 << 12);
  /** (budget + 1) | sleep << 8; 0 marks an empty slot. */
  private meta = new Int32Array(1 << 12);
  private mask = (1 << 12) - 1;
  size = 0;

  /**
   * Record the state the hasher has just hashed, reached with `left` budget
   * and sleep set `sleep` (a bit per actor). Returns the sleep set to explore
   * it with — `sleep`, or more when an earlier visit covered part of it — or
   * PRUNED when every move it could make was explored before with at least
   * this budget (Godefroid's rule for sleep sets with state caching: a
   * revisit explores only what the earlier visit slept on and this one does not).
   */
  visit(h: StateHasher, left: number, sleep = 0): number {
    const a = fmix(h.a);
    const b = fmix(h.b) | 0;
    const want = Math.min(left, 254) + 1;
    let i = (a ^ Math.imul(b, 0x9e3779b1)) & this.mask;
    for (;;) {
      const m = this.meta[i]!;
      if (m === 0) break;
      if (this.keysA[i] === a && this.keysB[i] === b) {
        const seen = m & BUDGET_MASK;
        const slept = m >>> SLEEP_SHIFT;
        if (seen < want) {
          this.meta[i] = want | (sleep << SLEEP_SHIFT);
          return sleep;
        }
        const missing = slept & ~sleep;
        if (missing === 0) return PRUNED;
        if (seen === want) this.meta[i] = want | ((slept & sleep) << SLEEP_SHIFT);
        return ~missing;
      }
      i = (i + 1) & this.mask;
    }
    this.keysA[i] = a;
    this.keysB[i] = b;
    this.meta[i] = want | (sleep << SLEEP_SHIFT);
    if (++this.size * 2 > this.mask) this.grow();
    return sleep;
  }

  /** Every recorded state's finalised key lanes and meta word. */
  forEach(fn: (a: number, b: number, meta: number) => void): void {
    for (let i = 0; i <= this.mask; i++) if (this.meta[i] !== 0) fn(this.keysA[i]!, this.keysB[i]!, this.meta[i]!);
  }

  /** Whether visit() would return PRUNED, without recording anything. */
  peek(h: StateHasher, left: number, sleep = 0): boolean {
    const a = fmix(h.a);
    const b = fmix(h.b) | 0;
    for (let i = (a ^ Math.imul(b, 0x9e3779b1)) & this.mask; this.meta[i] !== 0; i = (i + 1) & this.mask) {
      if (this.keysA[i] === a && this.keysB[i] === b) return covers(this.meta[i]!, left, sleep);
    }
    return false;
  }

  private grow(): void {
    const [ka, kb, me] = [this.keysA, this.keysB, this.meta];
    const n = ka.length * 2;
    this.keysA = new Int32Array(n);
    this.keysB = new Int32Array(n);
    this.meta = new Int32Array(n);
    this.mask = n - 1;
    for (let j = 0; j < ka.length; j++) {
      if (me[j] === 0) continue;
      let i = (ka[j]! ^ Math.imul(kb[j]!, 0x9e3779b1)) & this.mask;
      while (this.meta[i] !== 0) i = (i + 1) & this.mask;
      this.keysA[i] = ka[j]!;
      this.keysB[i] = kb[j]!;
      this.meta[i] = me[j]!;
    }
  }
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Pre-resolved views of one world, so hashing it is a flat loop. */
export class WorldView {
  private readonly memory: Int32Array;
  private readonly frameWord: Int32Array;
  private readonly oracle: Int32Array;
  private readonly device: Int32Array;
  private readonly caches: readonly { lines: VivtCpu; words: Int32Array }[];
  private readonly mms: readonly Mm[];

  constructor(readonly world: World) {
    const phys = world.machine.phys;
    this.memory = new Int32Array(phys.bytes.buffer, phys.bytes.byteOffset, phys.bytes.byteLength >> 2);
    this.frameWord = Int32Array.from({ length: world.pages }, (_, p) => (world.mapping.pfnAt(world.boOffset + p) * PAGE_SIZE) >> 2);
    this.oracle = new Int32Array(world.oracle.buffer);
    this.device = new Int32Array(world.device.buffer);
    this.mms = [...new Set(world.mms)];
    this.caches = world.machine.cpus.flatMap((c) => {
      if (!(c instanceof VivtCpu)) return [];
      const lines = c;
      return [{ lines, words: new Int32Array(lines.storage.buffer, lines.storage.byteOffset, lines.storage.byteLength >> 2) }];
    });
  }

  /** Hash the global state into h (which the caller has begun). */
  hashInto(h: StateHasher): void {
    const w = this.world;
    const pages = w.pages;
    for (const v of w.views) for (let i = 0; i < v.pages; i++) h.word(v.mm.readPte(v.baseVpn + i));
    // Not the cpumasks: a CPU in the mask with no entries of the mm behaves as one outside it.
    for (const mm of this.mms) {
      h.word(mm.tlbFlushPending);
      h.word(mm.vmas.length);
      // Flags change without a layout change (clear_refs resets VM_SOFTDIRTY; a merge may set it).
      for (const v of mm.vmas) h.word(v.flags);
    }
    for (const cpu of w.machine.cpus) {
      for (const v of w.views) for (let i = 0; i < v.pages; i++) h.word(cpu.tlb.peek(v.mm.id, v.baseVpn + i) ?? -1);
    }
    for (const { lines, words } of this.caches) {
      h.word(lines.nextVictim);
      for (let l = 0; l < lines.lineMm.length; l++) {
        const mm = lines.lineMm[l]!;
        if (mm === -1) {
          h.word(-1);
          continue;
        }
        h.word(w.mmIndex(mm));
        h.word(lines.lineVpn[l]!);
        h.word(lines.lineDirty[l]!);
        h.word(words[l * WORDS_PER_PAGE]!);
      }
    }
    for (let p = 0; p < pages; p++) {
      h.word(this.memory[this.frameWord[p]!]!);
      h.word(this.oracle[p * WORDS_PER_PAGE]!);
      h.word(this.device[p * WORDS_PER_PAGE]!);
    }
    const d = w.driver;
    if (d !== null) {
      const t = d.tracker;
      for (let i = 0; i < t.bitmap.words.length; i++) h.word(t.bitmap.words[i]!);
      h.word(t.start);
      h.word(t.end);
      h.word(t.method === 'pagetable' ? 0 : 1);
      h.word(t.changeCount);
      h.word(d.bo.reservation.held ? 1 : 0);
    }
  }
}

/** How a search consults and records explored states (VisitedStates, or SharedVisitedStates across workers). */
export interface StateCache {
  readonly size: number;
  visit(h: StateHasher, left: number, sleep?: number): number;
  peek(h: StateHasher, left: number, sleep?: number): boolean;
}

/** Whether a state recorded with `meta` covers a visit with `left` budget and sleep set `sleep`. */
function covers(meta: number, left: number, sleep: number): boolean {
  return (meta & BUDGET_MASK) >= Math.min(left, 254) + 1 && ((meta >>> SLEEP_SHIFT) & ~sleep) === 0;
}

const BUSY = -1;

/**
 * VisitedStates in shared memory, for several workers at once: the same
 * rule per slot, made atomic with compare-and-swap on the slot's meta word
 * (0 empty, BUSY while its keys are being written). Fixed capacity: once it
 * is three quarters full, new states are explored without being recorded
 * (sound, only slower).
 */
export class SharedVisitedStates implements StateCache {
  private readonly keysA: Int32Array;
  private readonly keysB: Int32Array;
  private readonly meta: Int32Array;
  private readonly count: Int32Array;
  private readonly mask: number;
  private readonly cap: number;

  /** Backing memory for `slots` states (a power of two). */
  static allocate(slots: number): SharedArrayBuffer {
    return new SharedArrayBuffer(slots * 12 + 4);
  }

  constructor(readonly buffer: SharedArrayBuffer) {
    const slots = (buffer.byteLength - 4) / 12;
    if (!Number.isInteger(slots) || (slots & (slots - 1)) !== 0) throw new RangeError('shared visited table: bad buffer size');
    this.keysA = new Int32Array(buffer, 0, slots);
    this.keysB = new Int32Array(buffer, slots * 4, slots);
    this.meta = new Int32Array(buffer, slots * 8, slots);
    this.count = new Int32Array(buffer, slots * 12, 1);
    this.mask = slots - 1;
    this.cap = slots * 0.75;
  }

  get size(): number {
    return Atomics.load(this.count, 0);
  }

  visit(h: StateHasher, left: number, sleep = 0): number {
    const a = fmix(h.a);
    const b = fmix(h.b) | 0;
    const want = Math.min(left, 254) + 1;
    const fresh = want | (sleep << SLEEP_SHIFT);
    let i = (a ^ Math.imul(b, 0x9e3779b1)) & this.mask;
    for (;;) {
      let m = Atomics.load(this.meta, i);
      if (m === 0) {
        if (this.size >= this.cap) return sleep;
        if (Atomics.compareExchange(this.meta, i, 0, BUSY) !== 0) continue;
        this.keysA[i] = a;
        this.keysB[i] = b;
        Atomics.store(this.meta, i, fresh);
        Atomics.add(this.count, 0, 1);
        return sleep;
      }
      while (m === BUSY) m = Atomics.load(this.meta, i);
      if (this.keysA[i] !== a || this.keysB[i] !== b) {
        i = (i + 1) & this.mask;
        continue;
      }
      for (;;) {
        const seen = m & BUDGET_MASK;
        const slept = m >>> SLEEP_SHIFT;
        let next: number;
        let result: number;
        if (seen < want) {
          next = fresh;
          result = sleep;
        } else {
          const missing = slept & ~sleep;
          if (missing === 0) return PRUNED;
          next = seen === want ? want | ((slept & sleep) << SLEEP_SHIFT) : m;
          result = ~missing;
        }
        if (next === m) return result;
        const was = Atomics.compareExchange(this.meta, i, m, next);
        if (was === m) return result;
        m = was;
      }
    }
  }

  peek(h: StateHasher, left: number, sleep = 0): boolean {
    const a = fmix(h.a);
    const b = fmix(h.b) | 0;
    for (let i = (a ^ Math.imul(b, 0x9e3779b1)) & this.mask; ; i = (i + 1) & this.mask) {
      let m = Atomics.load(this.meta, i);
      if (m === 0) return false;
      while (m === BUSY) m = Atomics.load(this.meta, i);
      if (this.keysA[i] === a && this.keysB[i] === b) return covers(m, left, sleep);
    }
  }

  /** Copy a local table's states in (before any worker starts). */
  absorb(local: VisitedStates): void {
    local.forEach((a, b, meta) => {
      let i = (a ^ Math.imul(b, 0x9e3779b1)) & this.mask;
      while (this.meta[i] !== 0) i = (i + 1) & this.mask;
      this.keysA[i] = a;
      this.keysB[i] = b;
      this.meta[i] = meta;
      this.count[0]!++;
    });
  }
}
