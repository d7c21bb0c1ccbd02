/**
 * The soak's only source of randomness: a seeded sfc32 generator.
 *
 * Written by hand rather than taken from a library because the soak's replay
 * promise rests on it: the sequence must be identical on every platform and
 * Node version for as long as the project keeps old seeds meaningful, and
 * drawing a number must cost nothing (a run draws tens of thousands).
 * Math.random cannot be seeded; fast-check's generators are not a public,
 * stable API.
 */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** Any safe non-negative integer is a seed; equal seeds give equal sequences. */
  constructor(seed: number) {
    // splitmix32 spreads both halves of the seed over the four state words.
    let s = (seed >>> 0) ^ Math.imul(Math.floor(seed / 2 ** 32) >>> 0, 0x9e3779b9);
    const next = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A uniform integer in [lo, hi] (inclusive; hi - lo < 2^32). */
  int(lo: number, hi: number): number {
    return lo + Math.floor((this.u32() / 2 ** 32) * (hi - lo + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.u32() < p * 2 ** 32;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }

  /** An item chosen with probability proportional to its weight. */
  weighted<T>(items: ReadonlyArray<readonly [T, number]>): T {
    let total = 0;
    for (const [, w] of items) total += w;
    let r = (this.u32() / 2 ** 32) * total;
    for (const [item, w] of items) {
      if (r < w) return item;
      r -= w;
    }
    return items[items.length - 1]![0];
  }

  /** An independent generator, so one consumer's draws never shift another's. */
  fork(): Prng {
    return new Prng(this.u32() * 2 ** 21 + (this.u32() >>> 11));
  }

  /** Fill dst with pseudo-random bytes. */
  fill(dst: Uint8Array): Uint8Array {
    let i = 0;
    for (; i + 4 <= dst.length; i += 4) {
      const v = this.u32();
      dst[i] = v;
      dst[i + 1] = v >>> 8;
      dst[i + 2] = v >>> 16;
      dst[i + 3] = v >>> 24;
    }
    for (; i < dst.length; i++) dst[i] = this.u32();
    return dst;
  }
}
