// The frame of a fence signalled ok: `{op: 'signaled', seq, fence, ok: true}`.
//
// Every sync ends with one, so it is written and read here by hand instead of through
// msgpackr's general encoder and the strict decoder plus validator: those walk a map of
// unknown keys, this compares a fixed byte layout. The bytes are exactly what the general
// encoder writes for that message (keys in that order, each uint in its shortest form), and
// the reader accepts only that layout: anything else, including valid MessagePack in another
// key order or width, goes the general way. So the fast path changes neither the wire nor what
// is accepted or rejected.
import { U32_MAX } from './constants.js';
import type { Signaled } from './messages.js';
import { putUint, uintBytes } from './uint.js';

/** fixmap(4), 'op': 'signaled', 'seq' */
const HEAD = ascii(0x84, 'op', 'signaled', 'seq');
/** 'fence' */
const FENCE_KEY = ascii(null, 'fence');
/** 'ok': true */
const TAIL = [...ascii(null, 'ok'), 0xc3];

/** MessagePack fixstrs of `keys`, after `first` when it is a byte. */
function ascii(first: number | null, ...keys: string[]): number[] {
  const out = first === null ? [] : [first];
  for (const k of keys) out.push(0xa0 | k.length, ...Array.from(k, (c) => c.charCodeAt(0)));
  return out;
}

/**
 * The frame of `{op: 'signaled', seq, fence, ok: true}`, or null when seq or fence is beyond
 * u32 (the general encoder writes those as 64-bit ints).
 */
export function encodeSignaledOk(seq: number, fence: number): Uint8Array | null {
  if (!isU32(seq) || !isU32(fence)) return null;
  // From Node's buffer pool (every byte is written below): a Buffer, which ws sends as it is,
  // where a Uint8Array would be wrapped in one first.
  const out = Buffer.allocUnsafe(HEAD.length + uintBytes(seq) + FENCE_KEY.length + uintBytes(fence) + TAIL.length);
  out.set(HEAD);
  let at = putUint(out, HEAD.length, seq);
  out.set(FENCE_KEY, at);
  at = putUint(out, at + FENCE_KEY.length, fence);
  out.set(TAIL, at);
  return out;
}

/**
 * The message of a frame laid out exactly as encodeSignaledOk writes it, or null for any other
 * frame (which the general decoder then reads, accepts or rejects).
 */
export function decodeSignaledOk(frame: Uint8Array): Signaled | null {
  if (!matches(frame, 0, HEAD)) return null;
  const seq = readUint(frame, HEAD.length);
  if (seq < 0) return null;
  const fenceAt = HEAD.length + uintBytes(seq);
  if (!matches(frame, fenceAt, FENCE_KEY)) return null;
  const fence = readUint(frame, fenceAt + FENCE_KEY.length);
  if (fence < 0) return null;
  const tailAt = fenceAt + FENCE_KEY.length + uintBytes(fence);
  if (tailAt + TAIL.length !== frame.length || !matches(frame, tailAt, TAIL)) return null;
  return { op: 'signaled', seq, fence, ok: true };
}

function matches(frame: Uint8Array, at: number, bytes: readonly number[]): boolean {
  if (at + bytes.length > frame.length) return false;
  for (let i = 0; i < bytes.length; i++) if (frame[at + i] !== bytes[i]) return false;
  return true;
}

/** A uint at `at` in its shortest form (as encodeSignaledOk writes it), or -1. */
function readUint(frame: Uint8Array, at: number): number {
  const b = frame[at];
  if (b === undefined) return -1;
  if (b < 0x80) return b;
  let v: number;
  if (b === 0xcc && at + 2 <= frame.length) v = frame[at + 1]!;
  else if (b === 0xcd && at + 3 <= frame.length) v = (frame[at + 1]! << 8) | frame[at + 2]!;
  else if (b === 0xce && at + 5 <= frame.length) v = ((frame[at + 1]! << 24) | (frame[at + 2]! << 16) | (frame[at + 3]! << 8) | frame[at + 4]!) >>> 0;
  else return -1;
  // A longer form than needed is valid MessagePack, but not this layout: the general way reads it.
  return uintBytes(v) === (b === 0xcc ? 2 : b === 0xcd ? 3 : 5) ? v : -1;
}

function isU32(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= U32_MAX;
}
