/**
 * Cheap state hashing for the explorer: two independent 32-bit lanes (a
 * murmur3-style word mix and an FNV-1a-style one with a fold) over the
 * machine's typed-array state, used together as a 64-bit key. With the state
 * counts the explorer reaches (a few million at most), the chance that two
 * distinct states share a key — which would wrongly prune one — is below
 * 10^-6 per exploration.
 *
 * What the global hash covers is everything that can influence the future of
 * an execution, with per-execution identities (mm ids, pfns) replaced by
 * stable indices:
 *  - every PTE of every VMA of the BO, each mm's deferred-flush counter and cpumask;
 *  - each CPU's TLB entry for every (mm, page) the scenario can touch (the
 *    TLB never evicts, see world.ts, so its contents are its whole state);
 *  - vivt: each CPU's cache lines (tag, dirty, data) and replacement pointer;
 *  - memory, the oracle and the device copy (one word per page holds all data, see scenario.ts).
 * Hashing allocates nothing.
 */
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

/**
 * The explorer's visited set: 64-bit state keys (two finalised lanes) mapped
 * to the largest preemption budget left with which the state was explored.
 * Open addressing over typed arrays, so a lookup allocates nothing and the
 * table costs 9 bytes a slot instead of a Map entry per state.
 */
export class VisitedStates {
  private keysA = new Int32Array(1 << 12);
  private keysB = new Int32Array(1 << 12);
  /** Budget + 1; 0 marks an empty slot. */
  private budget = new Uint8Array(1 << 12);
  private mask = (1 << 12) - 1;
  size = 0;

  /**
   * Record the state the hasher has just hashed, with `left` budget. Returns
   * false when it was already explored with at least that much (prune).
   */
  visit(h: StateHasher, left: number): boolean {
    const a = fmix(h.a);
    const b = fmix(h.b) | 0;
    const want = Math.min(left, 254) + 1;
    let i = (a ^ Math.imul(b, 0x9e3779b1)) & this.mask;
    for (;;) {
      const seen = this.budget[i]!;
      if (seen === 0) break;
      if (this.keysA[i] === a && this.keysB[i] === b) {
        if (seen >= want) return false;
        this.budget[i] = want;
        return true;
      }
      i = (i + 1) & this.mask;
    }
    this.keysA[i] = a;
    this.keysB[i] = b;
    this.budget[i] = want;
    if (++this.size * 2 > this.mask) this.grow();
    return true;
  }

  private grow(): void {
    const [ka, kb, bu] = [this.keysA, this.keysB, this.budget];
    const n = ka.length * 2;
    this.keysA = new Int32Array(n);
    this.keysB = new Int32Array(n);
    this.budget = new Uint8Array(n);
    this.mask = n - 1;
    for (let j = 0; j < ka.length; j++) {
      if (bu[j] === 0) continue;
      let i = (ka[j]! ^ Math.imul(kb[j]!, 0x9e3779b1)) & this.mask;
      while (this.budget[i] !== 0) i = (i + 1) & this.mask;
      this.keysA[i] = ka[j]!;
      this.keysB[i] = kb[j]!;
      this.budget[i] = bu[j]!;
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

  constructor(readonly world: World) {
    const phys = world.machine.phys;
    this.memory = new Int32Array(phys.bytes.buffer, phys.bytes.byteOffset, phys.bytes.byteLength >> 2);
    this.frameWord = Int32Array.from({ length: world.pages }, (_, p) => (world.bo.pfnAt(p) * PAGE_SIZE) >> 2);
    this.oracle = new Int32Array(world.oracle.buffer);
    this.device = new Int32Array(world.device.buffer);
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
    for (const v of w.vmas) {
      const base = v.start / PAGE_SIZE - v.pgoff;
      for (let p = 0; p < pages; p++) h.word(v.mm.readPte(base + p));
    }
    for (const mm of w.mms) {
      h.word(mm.tlbFlushPending);
      for (let c = 0; c < mm.cpuMask.length; c++) h.word(mm.cpuMask[c]!);
    }
    for (const cpu of w.machine.cpus) {
      for (const v of w.vmas) {
        const base = v.start / PAGE_SIZE - v.pgoff;
        for (let p = 0; p < pages; p++) h.word(cpu.tlb.peek(v.mm.id, base + p) ?? -1);
      }
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
  }
}
