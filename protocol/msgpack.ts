// Strict MessagePack decoder: accepts exactly what docs/protocol.md §2 allows.
//
// Written by hand rather than with msgpackr (which still encodes): msgpackr decodes a nested
// 0xc1, extension types and non-string map keys, and recurses without a bound, so a deeply
// nested frame overflows the stack. Here
// - malformed (the frame is not exactly one well-formed value the protocol allows): truncated,
//   trailing bytes, 0xc1 anywhere, any extension type, a str that is not UTF-8;
// - a *shape problem* (well-formed, but not a protocol value): a map key that is not a str, a
//   key given twice, nesting deeper than MAX_DEPTH. The frame still decodes (the offending
//   entry or subtree is left out) so that the validator can read `seq` and `fence` for its
//   bad_message answer; the frame is never applied.
// bin values are views into the frame (no copy); everything else is a fresh plain value.
import { MAX_DEPTH } from './constants.js';

export interface Decoded {
  value: unknown;
  /** The first shape problem, if any (the frame is then a bad message). */
  problem: string | undefined;
}

export class MalformedError extends Error {
  override readonly name = 'MalformedError';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Recently decoded short ASCII strs (keys and op names repeat in every frame), by a hash of
 * their bytes: a hit compares at most 16 bytes instead of building a new string.
 */
const CACHE_SLOTS = 1024;
const cachedBytes: (Uint8Array | undefined)[] = new Array(CACHE_SLOTS);
const cachedStrs: string[] = new Array(CACHE_SLOTS);

/** Decodes one frame; throws MalformedError when it is not one well-formed protocol value. */
export function decodeStrict(frame: Uint8Array): Decoded {
  const r = new Reader(frame);
  if (frame.length === 0) throw new MalformedError('empty frame');
  const value = r.value(1);
  if (r.pos !== frame.length) throw new MalformedError(`${frame.length - r.pos} trailing byte(s) after the value`);
  return { value, problem: r.problem };
}

class Reader {
  pos = 0;
  problem: string | undefined;
  /** For floats only, made on first use: a DataView costs more than decoding a small frame. */
  private floats: DataView | null = null;
  /** The same bytes as a Buffer, for its native latin1 slicing of ASCII strs. */
  private readonly bytes: Buffer;

  constructor(private readonly buf: Uint8Array) {
    this.bytes = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  value(depth: number): unknown {
    const b = this.byte();
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b <= 0x8f) return this.map(b & 0x0f, depth);
    if (b <= 0x9f) return this.array(b & 0x0f, depth);
    if (b <= 0xbf) return this.str(b & 0x1f);
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.bin(this.uint(1));
      case 0xc5: return this.bin(this.uint(2));
      case 0xc6: return this.bin(this.uint(4));
      case 0xca: return this.floatView().getFloat32(this.take(4));
      case 0xcb: return this.floatView().getFloat64(this.take(8));
      case 0xcc: return this.uint(1);
      case 0xcd: return this.uint(2);
      case 0xce: return this.uint(4);
      case 0xcf: return this.uint(4) * 2 ** 32 + this.uint(4); // ≥ 2^53 is inexact; validators reject it
      case 0xd0: return (this.uint(1) << 24) >> 24;
      case 0xd1: return (this.uint(2) << 16) >> 16;
      case 0xd2: return this.uint(4) | 0;
      case 0xd3: return (this.uint(4) | 0) * 2 ** 32 + this.uint(4);
      case 0xd9: return this.str(this.uint(1));
      case 0xda: return this.str(this.uint(2));
      case 0xdb: return this.str(this.uint(4));
      case 0xdc: return this.array(this.uint(2), depth);
      case 0xdd: return this.array(this.uint(4), depth);
      case 0xde: return this.map(this.uint(2), depth);
      case 0xdf: return this.map(this.uint(4), depth);
      case 0xc1: throw new MalformedError(`reserved byte 0xc1 at ${this.pos - 1}`);
      default: throw new MalformedError(`extension type (0x${b.toString(16)}) at ${this.pos - 1}: not part of the protocol`);
    }
  }

  private array(n: number, depth: number): unknown[] | null {
    this.room(n, 'array');
    if (depth > MAX_DEPTH) return this.skipDeep(n);
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
    return out;
  }

  private map(n: number, depth: number): Record<string, unknown> | null {
    this.room(2 * n, 'map');
    if (depth > MAX_DEPTH) return this.skipDeep(2 * n);
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const at = this.pos;
      const key = this.value(depth + 1);
      const v = this.value(depth + 1);
      if (typeof key !== 'string') this.problem ??= `map key at byte ${at} is not a str`;
      else if (Object.hasOwn(out, key)) this.problem ??= `key '${key.slice(0, 40)}' appears twice in one map`;
      else if (key !== '__proto__') out[key] = v; // an unknown key either way; never a prototype
    }
    return out;
  }

  /**
   * Checks `pending` more values without building them (too deep to decode). Iterative, so no
   * nesting overflows the stack; still rejects every malformed byte.
   */
  private skipDeep(pending: number): null {
    this.problem ??= `nesting deeper than ${MAX_DEPTH} levels`;
    while (pending > 0) {
      pending--;
      const b = this.buf[this.pos];
      let n = -1;
      if (b !== undefined && b >= 0x80 && b <= 0x8f) n = 2 * (b & 0x0f);
      else if (b !== undefined && b >= 0x90 && b <= 0x9f) n = b & 0x0f;
      else if (b === 0xdc || b === 0xdd) n = (this.pos++, this.uint(b === 0xdc ? 2 : 4));
      else if (b === 0xde || b === 0xdf) n = (this.pos++, 2 * this.uint(b === 0xde ? 2 : 4));
      if (n < 0) {
        this.value(1); // a scalar, str or bin: decoding it checks it and moves past it
        continue;
      }
      if (b! <= 0x9f) this.pos++;
      this.room(n, 'container');
      pending += n;
    }
    return null;
  }

  private str(n: number): string {
    const at = this.take(n);
    const buf = this.buf;
    // Keys and op names are short ASCII (where latin1 = UTF-8): from the cache, or sliced
    // natively; anything else goes through the fatal UTF-8 decoder, which rejects invalid
    // sequences.
    if (n <= 16) {
      let high = 0;
      let hash = n;
      for (let i = at; i < at + n; i++) {
        high |= buf[i]!;
        hash = Math.imul(hash ^ buf[i]!, 0x01000193);
      }
      if (high < 0x80) {
        const slot = (hash >>> 0) % CACHE_SLOTS;
        const known = cachedBytes[slot];
        if (known !== undefined && known.length === n) {
          let i = 0;
          while (i < n && known[i] === buf[at + i]) i++;
          if (i === n) return cachedStrs[slot]!;
        }
        const str = this.bytes.toString('latin1', at, at + n);
        cachedBytes[slot] = Uint8Array.prototype.slice.call(buf, at, at + n); // a copy: never keep the frame alive
        cachedStrs[slot] = str;
        return str;
      }
    } else if (n <= 64) {
      let high = 0;
      for (let i = at; i < at + n; i++) high |= buf[i]!;
      if (high < 0x80) return this.bytes.toString('latin1', at, at + n);
    }
    try {
      return utf8.decode(this.buf.subarray(at, at + n));
    } catch {
      throw new MalformedError(`str at byte ${at} is not UTF-8`);
    }
  }

  private bin(n: number): Uint8Array {
    const at = this.take(n);
    return this.buf.subarray(at, at + n);
  }

  /** A big-endian unsigned int of 1, 2 or 4 bytes. */
  private uint(bytes: 1 | 2 | 4): number {
    const at = this.take(bytes);
    const b = this.buf;
    if (bytes === 1) return b[at]!;
    if (bytes === 2) return (b[at]! << 8) | b[at + 1]!;
    return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
  }

  private floatView(): DataView {
    return (this.floats ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength));
  }

  private byte(): number {
    return this.buf[this.take(1)]!;
  }

  /** Advances past n bytes; returns where they start. */
  private take(n: number): number {
    const at = this.pos;
    if (n > this.buf.length - at) throw new MalformedError(`truncated: ${n} byte(s) needed at ${at}, ${this.buf.length - at} left`);
    this.pos = at + n;
    return at;
  }

  /** Every value takes at least one byte: a header claiming more than the rest holds is a lie. */
  private room(values: number, what: string): void {
    if (values > this.buf.length - this.pos) {
      throw new MalformedError(`truncated: ${what} of ${values} value(s) at ${this.pos} with ${this.buf.length - this.pos} byte(s) left`);
    }
  }
}
