// A MessagePack uint in its shortest form, written at a position of a caller's buffer: what
// msgpackr writes for a non-negative integer, for the frames this project writes by hand (the
// driver's DMA frames, the device's ok signal).

/** Bytes of `v` in its shortest form (non-negative integers up to 2^53). */
export function uintBytes(v: number): number {
  return v < 0x80 ? 1 : v < 0x100 ? 2 : v < 0x10000 ? 3 : v <= 0xffffffff ? 5 : 9;
}

/** Writes `v` at `at` of `out`; returns the position after it. */
export function putUint(out: Uint8Array, at: number, v: number): number {
  if (v < 0x80) {
    out[at] = v;
    return at + 1;
  }
  if (v < 0x100) {
    out[at] = 0xcc;
    out[at + 1] = v;
    return at + 2;
  }
  if (v < 0x10000) {
    out[at] = 0xcd;
    out[at + 1] = v >>> 8;
    out[at + 2] = v & 0xff;
    return at + 3;
  }
  if (v <= 0xffffffff) {
    out[at] = 0xce;
    putU32(out, at + 1, v);
    return at + 5;
  }
  out[at] = 0xcf;
  putU32(out, at + 1, Math.floor(v / 2 ** 32));
  putU32(out, at + 5, v >>> 0);
  return at + 9;
}

/** Writes `v` (below 2^32) as 4 big-endian bytes at `at`. */
export function putU32(out: Uint8Array, at: number, v: number): void {
  out[at] = v >>> 24;
  out[at + 1] = (v >>> 16) & 0xff;
  out[at + 2] = (v >>> 8) & 0xff;
  out[at + 3] = v & 0xff;
}
