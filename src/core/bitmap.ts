import { InvalidArgumentError, requireInteger } from './errors.js';

/**
 * A fixed-size bit array over Uint32Array words, with the find-next-bit
 * primitives the dirty trackers need. Bit i lives in word `i >>> 5`.
 */
export class Bitmap {
  readonly words: Uint32Array;

  constructor(readonly size: number) {
    requireInteger('bitmap size', size, 0);
    this.words = new Uint32Array((size + 31) >>> 5);
  }

  test(i: number): boolean {
    return ((this.words[i >>> 5]! >>> (i & 31)) & 1) === 1;
  }

  set(i: number): void {
    this.words[i >>> 5]! |= 1 << (i & 31);
  }

  clear(i: number): void {
    this.words[i >>> 5]! &= ~(1 << (i & 31));
  }

  /** Set bits [from, to). */
  setRange(from: number, to: number): void {
    this.fillRange(from, to, true);
  }

  /** Clear bits [from, to). */
  clearRange(from: number, to: number): void {
    this.fillRange(from, to, false);
  }

  clearAll(): void {
    this.words.fill(0);
  }

  /** First set bit in [from, limit), or limit when there is none. */
  findNextSet(from: number, limit = this.size): number {
    return this.findNext(from, limit, 0);
  }

  /** First clear bit in [from, limit), or limit when there is none. */
  findNextClear(from: number, limit = this.size): number {
    return this.findNext(from, limit, 0xffffffff);
  }

  /** Number of set bits. */
  count(): number {
    let n = 0;
    for (let w = 0; w < this.words.length; w++) {
      let v = this.words[w]!;
      v = v - ((v >>> 1) & 0x55555555);
      v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
      n += (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
    }
    return n;
  }

  /** Indices of all set bits, in increasing order. */
  toArray(): number[] {
    const out: number[] = [];
    for (let i = this.findNextSet(0); i < this.size; i = this.findNextSet(i + 1)) out.push(i);
    return out;
  }

  /** Maximal runs [start, end) of set bits, in increasing order. */
  runs(from = 0, limit = this.size): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let s = this.findNextSet(from, limit); s < limit; ) {
      const e = this.findNextClear(s, limit);
      out.push([s, e]);
      s = this.findNextSet(e, limit);
    }
    return out;
  }

  /** Whole words at a time where the range covers them. */
  private fillRange(from: number, to: number, value: boolean): void {
    this.checkRange(from, to);
    for (let i = from; i < to; ) {
      if ((i & 31) === 0 && i + 32 <= to) {
        this.words[i >>> 5] = value ? 0xffffffff : 0;
        i += 32;
      } else {
        if (value) this.set(i);
        else this.clear(i);
        i++;
      }
    }
  }

  /** First bit in [from, limit) that differs from `flip` (0: first set bit; all ones: first clear bit). */
  private findNext(from: number, limit: number, flip: number): number {
    if (from >= limit) return limit;
    let w = from >>> 5;
    let word = (this.words[w]! ^ flip) & (0xffffffff << (from & 31));
    const lastWord = (limit - 1) >>> 5;
    for (;;) {
      if (word !== 0) {
        const bit = (w << 5) + (31 - Math.clz32(word & -word));
        return bit < limit ? bit : limit;
      }
      if (++w > lastWord) return limit;
      word = this.words[w]! ^ flip;
    }
  }

  private checkRange(from: number, to: number): void {
    if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > this.size || from > to) {
      throw new InvalidArgumentError(`bit range [${from}, ${to}) is outside a bitmap of ${this.size} bits`);
    }
  }
}
