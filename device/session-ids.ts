// Session ids: unique for the device's lifetime and not guessable from one another.
//
// A counter run through a keyed permutation of the 32-bit ids (a 4-round Feistel network over
// two 16-bit halves, round keys from the CSPRNG): a permutation never repeats a value, so ids
// stay unique without remembering the ones handed out, and consecutive sessions get unrelated
// ids, so a client cannot name its neighbours by counting. Not cryptographic: an observer of
// many ids could learn the keys; credentials, not ids, protect sessions (control token).
import { randomBytes } from 'node:crypto';

const ROUNDS = 4;

export class SessionIds {
  private counter = 0;
  private readonly keys: Uint32Array;

  constructor(keys?: Uint32Array) {
    this.keys = keys ?? new Uint32Array(randomBytes(4 * ROUNDS).buffer);
  }

  /** The next id: never 0, never one handed out before (for 2^32 − 1 calls). */
  next(): number {
    for (;;) {
      const id = this.permute(this.counter++);
      if (this.counter > 0xffff_ffff) throw new RangeError('session ids exhausted');
      if (id !== 0) return id;
    }
  }

  private permute(x: number): number {
    let left = x >>> 16;
    let right = x & 0xffff;
    for (let r = 0; r < ROUNDS; r++) {
      const next = left ^ round(right, this.keys[r]!);
      left = right;
      right = next;
    }
    return ((left << 16) | right) >>> 0;
  }
}

/** A 16-bit mix of a half and a round key (multiply-xorshift). */
function round(half: number, key: number): number {
  let h = Math.imul(half ^ key, 0x9e3779b1);
  h ^= h >>> 15;
  h = Math.imul(h, 0x85ebca77);
  h ^= h >>> 13;
  return h & 0xffff;
}
