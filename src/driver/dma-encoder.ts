import type { Codec } from '../../protocol/index.js';
import { encodeSpanData, putU32, putUint, SPAN_ENTRY_BYTES } from '../../protocol/index.js';

/** MessagePack primitives written at a cursor into a caller's buffer (keys are short ASCII). */
export class FrameBytes {
  protected pos = 0;

  constructor(private target: Uint8Array) {}

  /** The buffer frames are written into. */
  get buf(): Uint8Array {
    return this.target;
  }

  /**
   * Writes the next frame into `buf` (a staging buffer): one writer serves every frame of an
   * engine, so a 1-page sync allocates no writer and no span table.
   */
  into(buf: Uint8Array): this {
    this.target = buf;
    this.pos = 0;
    return this;
  }

  get length(): number {
    return this.pos;
  }

  protected str(s: string): void {
    this.byte(0xa0 | s.length);
    for (let i = 0; i < s.length; i++) this.buf[this.pos++] = s.charCodeAt(i);
  }

  protected uint(v: number): void {
    this.pos = putUint(this.target, this.pos, v);
  }

  protected u32(v: number): void {
    putU32(this.target, this.pos, v);
    this.pos += 4;
  }

  protected byte(b: number): void {
    this.buf[this.pos++] = b;
  }

  /**
   * Starts a frame at the buffer's start: a fixmap of `op`, `seq`, the target id, `seen` and
   * `fence` when given, and `more` keys the caller writes next. Returns the map header's index.
   */
  protected header(op: string, seq: number, idKey: string, id: number, seen: number | undefined, fence: number | undefined, more: number): number {
    this.pos = 0;
    this.byte(0x80 | (3 + more + (seen === undefined ? 0 : 1) + (fence === undefined ? 0 : 1)));
    this.str('op');
    this.str(op);
    this.str('seq');
    this.uint(seq);
    this.str(idKey);
    this.uint(id);
    if (seen !== undefined) {
      this.str('seen');
      this.uint(seen);
    }
    if (fence !== undefined) {
      this.str('fence');
      this.uint(fence);
    }
    return 0;
  }
}

/**
 * Encodes the two bulk DMA messages ('write' and 'writeSurface', see
 * docs/protocol.md) straight into a reusable staging buffer, copying page data
 * from guest memory exactly once. The output is standard MessagePack (a map
 * with str keys; the range/box list is an array32 whose count is patched at
 * the end; data as bin32), decoded by the device like any other frame.
 */
export class DmaFrameWriter extends FrameBytes {
  private countAt = -1;
  private count = 0;

  /** Bytes still free for one more entry's payload, after its worst-case header. */
  room(): number {
    return this.buf.length - this.pos - ENTRY_OVERHEAD;
  }

  get entries(): number {
    return this.count;
  }

  /**
   * `seen` (feature seen): deviceWrite announcements processed before the data is read; `fence` (feature fencedWrite): signalled
   * right after the frame (docs/protocol.md §6.5, §6.14).
   */
  beginWrite(seq: number, bo: number, seen: number | undefined, fence?: number): void {
    this.begin('write', seq, 'bo', bo, 'ranges', seen, fence);
  }

  beginWriteSurface(seq: number, sid: number, seen: number | undefined, fence?: number): void {
    this.begin('writeSurface', seq, 'sid', sid, 'boxes', seen, fence);
  }

  /** One [offset, bin] entry; `fill` writes exactly `len` bytes at buf[at..]. */
  addRange(offset: number, len: number, fill: (buf: Uint8Array, at: number) => void): void {
    this.byte(0x92);
    this.uint(offset);
    this.bin(len, fill);
    this.count++;
  }

  /** One [x, y, z, w, h, d, bin] entry. */
  addBox(x: number, y: number, z: number, w: number, h: number, d: number, len: number, fill: (buf: Uint8Array, at: number) => void): void {
    this.byte(0x97);
    this.uint(x);
    this.uint(y);
    this.uint(z);
    this.uint(w);
    this.uint(h);
    this.uint(d);
    this.bin(len, fill);
    this.count++;
  }

  /** The finished frame (a view of the staging buffer). */
  finish(): Uint8Array {
    putU32(this.buf, this.countAt, this.count);
    return this.buf.subarray(0, this.pos);
  }

  private begin(op: string, seq: number, idKey: string, id: number, listKey: string, seen: number | undefined, fence: number | undefined): void {
    this.count = 0;
    this.header(op, seq, idKey, id, seen, fence, 1);
    this.str(listKey);
    this.byte(0xdd);
    this.countAt = this.pos;
    this.pos += 4;
  }

  private bin(len: number, fill: (buf: Uint8Array, at: number) => void): void {
    // Callers size entries by room(); an entry that does not fit would corrupt the frame.
    if (!Number.isInteger(len) || len < 0 || this.pos + 5 + len > this.buf.length) {
      throw new RangeError(`a ${len}-byte entry does not fit the ${this.buf.length - this.pos} bytes left in the frame`);
    }
    this.byte(0xc6);
    this.u32(len);
    fill(this.buf, this.pos);
    this.pos += len;
  }

}

/** Worst-case bytes of an entry besides its data: box header 1 + 6 uint64 + bin32 header. */
export const ENTRY_OVERHEAD = 1 + 6 * 9 + 5;
/** Bytes after the data of a writeSpans frame besides the table: codec key and value, spans key, bin32 header. */
const SPANS_TRAILER = 6 + 8 + 6 + 5;

/**
 * Encodes a 'writeSpans' frame (feature writeSpans, docs/protocol.md §6.15) into a staging
 * buffer: the spans' bytes go straight into the frame's `data` as they are read from guest
 * memory, the table is kept aside and appended at the end (MessagePack map keys have no order,
 * so `data` comes before `spans`). finish() may compress the data in place.
 */
export class SpanFrameWriter extends FrameBytes {
  private mapAt = 0;
  private dataAt = 0;
  private table = new Uint32Array(2 * 256);
  private count = 0;

  beginWriteSpans(seq: number, bo: number, seen: number | undefined, fence: number | undefined): void {
    this.count = 0;
    this.mapAt = this.header('writeSpans', seq, 'bo', bo, seen, fence, 2);
    this.str('data');
    this.byte(0xc6);
    this.pos += 4;
    this.dataAt = this.pos;
  }

  get entries(): number {
    return this.count;
  }

  /** Data bytes written so far. */
  get dataBytes(): number {
    return this.pos - this.dataAt;
  }

  /** The data written so far (a view). */
  get data(): Uint8Array {
    return this.buf.subarray(this.dataAt, this.pos);
  }

  /** Bytes one more span may carry: what is left after its table entry and the trailer. */
  room(): number {
    return this.buf.length - this.pos - (this.count + 1) * SPAN_ENTRY_BYTES - SPANS_TRAILER;
  }

  /** Adds span [offset, offset + len) of the BO with its bytes from src[from..]; returns where they are in buf. */
  addSpanFrom(offset: number, src: Uint8Array, from: number, len: number): number {
    return this.addSpan(offset, len, (buf, at) => copyBytes(src, from, buf, at, len));
  }

  /** Adds span [offset, offset + len) of the BO; `fill` writes its `len` bytes at buf[at..]. Returns `at`. */
  addSpan(offset: number, len: number, fill: (buf: Uint8Array, at: number) => void): number {
    if (!Number.isInteger(len) || len < 0 || len > this.room()) {
      throw new RangeError(`a ${len}-byte span does not fit the ${this.room()} bytes left in the frame`);
    }
    if (2 * this.count + 2 > this.table.length) {
      const grown = new Uint32Array(this.table.length * 2);
      grown.set(this.table);
      this.table = grown;
    }
    // Adjacent spans merge: fewer table entries, same bytes.
    const last = 2 * (this.count - 1);
    if (this.count > 0 && this.table[last]! + this.table[last + 1]! === offset) this.table[last + 1]! += len;
    else {
      this.table[2 * this.count] = offset;
      this.table[2 * this.count + 1] = len;
      this.count++;
    }
    const at = this.pos;
    fill(this.buf, at);
    this.pos += len;
    return at;
  }

  /**
   * The finished frame (a view of the staging buffer). With codec 'deflate' the data is
   * compressed and replaces the raw bytes when smaller; `codecUsed` says what was sent.
   */
  finish(codec: Codec): { frame: Uint8Array; codecUsed: Codec; packedBytes: number } {
    let codecUsed: Codec = 'none';
    const raw = this.dataBytes;
    let packedBytes = raw;
    if (codec !== 'none' && raw > 0) {
      const packed = encodeSpanData(codec, this.data);
      packedBytes = packed.length;
      if (packed.length < raw) {
        this.buf.set(packed, this.dataAt);
        this.pos = this.dataAt + packed.length;
        codecUsed = codec;
      }
    }
    putU32(this.buf, this.dataAt - 4, this.pos - this.dataAt);
    if (codecUsed !== 'none') {
      this.buf[this.mapAt]! += 1;
      this.str('codec');
      this.str(codecUsed);
    }
    this.str('spans');
    this.byte(0xc6);
    this.u32(this.count * SPAN_ENTRY_BYTES);
    for (let i = 0; i < 2 * this.count; i++) this.u32(this.table[i]!);
    return { frame: this.buf.subarray(0, this.pos), codecUsed, packedBytes };
  }
}

/**
 * Copies n bytes. Deltas are mostly a few 16-byte blocks: a loop beats making two views for
 * TypedArray.set at that size; larger copies go native.
 */
export function copyBytes(src: Uint8Array, from: number, dst: Uint8Array, to: number, n: number): void {
  if (n <= 64) for (let i = 0; i < n; i++) dst[to + i] = src[from + i]!;
  else dst.set(src.subarray(from, from + n), to);
}
