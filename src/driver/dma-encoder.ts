/**
 * Encodes the two bulk DMA messages ('write' and 'writeSurface', see
 * docs/protocol.md) straight into a reusable staging buffer, copying page data
 * from guest memory exactly once. The output is standard MessagePack (a map
 * with str keys; the range/box list is an array32 whose count is patched at
 * the end; data as bin32), decoded by the device like any other frame.
 */
export class DmaFrameWriter {
  private pos = 0;
  private countAt = -1;
  private count = 0;

  constructor(readonly buf: Uint8Array) {}

  get length(): number {
    return this.pos;
  }

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
    const c = this.count;
    this.buf[this.countAt] = c >>> 24;
    this.buf[this.countAt + 1] = (c >>> 16) & 0xff;
    this.buf[this.countAt + 2] = (c >>> 8) & 0xff;
    this.buf[this.countAt + 3] = c & 0xff;
    return this.buf.subarray(0, this.pos);
  }

  private begin(op: string, seq: number, idKey: string, id: number, listKey: string, seen: number | undefined, fence: number | undefined): void {
    this.pos = 0;
    this.count = 0;
    this.byte(0x80 | (4 + (seen === undefined ? 0 : 1) + (fence === undefined ? 0 : 1))); // fixmap of the keys below
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

  private str(s: string): void {
    this.byte(0xa0 | s.length);
    for (let i = 0; i < s.length; i++) this.buf[this.pos++] = s.charCodeAt(i);
  }

  private uint(v: number): void {
    if (v < 128) this.byte(v);
    else if (v < 0x100) (this.byte(0xcc), this.byte(v));
    else if (v < 0x10000) (this.byte(0xcd), this.byte(v >>> 8), this.byte(v & 0xff));
    else if (v <= 0xffffffff) (this.byte(0xce), this.u32(v));
    else (this.byte(0xcf), this.u32(Math.floor(v / 2 ** 32)), this.u32(v >>> 0));
  }

  private u32(v: number): void {
    this.buf[this.pos++] = v >>> 24;
    this.buf[this.pos++] = (v >>> 16) & 0xff;
    this.buf[this.pos++] = (v >>> 8) & 0xff;
    this.buf[this.pos++] = v & 0xff;
  }

  private byte(b: number): void {
    this.buf[this.pos++] = b;
  }
}

/** Worst-case bytes of an entry besides its data: box header 1 + 6 uint64 + bin32 header. */
export const ENTRY_OVERHEAD = 1 + 6 * 9 + 5;