// Unmasking of client frames while they are copied (RFC 6455 §5.3): one pass over the bytes,
// from the socket's read into the message buffer. bufferutil's native `mask` XOR-copies when
// the optional dependency is installed; otherwise a JS loop does the same.
import { createRequire } from 'node:module';

/** bufferutil's mask: output[offset + i] = source[i] ^ mask[i & 3] for i < length. */
type MaskFn = (source: Uint8Array, mask: Uint8Array, output: Uint8Array, offset: number, length: number) => void;

/** Below this many bytes the native call costs more than the loop (ws uses the same cut). */
const NATIVE_FROM_BYTES = 48;

function loadNative(): MaskFn | null {
  try {
    const mod = createRequire(import.meta.url)('bufferutil') as { mask?: unknown };
    return typeof mod.mask === 'function' ? (mod.mask as MaskFn) : null;
  } catch {
    return null;
  }
}

const native = loadNative();

/** Whether the native XOR-copy is in use (bufferutil installed and loadable). */
export const nativeMask = native !== null;

/** The JS form of bufferutil's mask (also what runs when bufferutil is absent). */
export function maskLoop(source: Uint8Array, mask: Uint8Array, output: Uint8Array, offset: number, length: number): void {
  for (let i = 0; i < length; i++) output[offset + i] = source[i]! ^ mask[i & 3]!;
}

/** The key rotated to a payload position: scratch, rewritten by every call. */
const rotated = new Uint8Array(4);

/**
 * Copies `length` bytes of `source` from `from` into `output` at `to`, unmasking them with
 * `key` as bytes at payload offset `phase` (only phase mod 4 matters: a payload split across
 * reads continues the key where the previous piece stopped). `output` may be `source` with
 * `to === from` (unmasking in place). A zero key is a plain copy.
 */
export function unmaskCopy(source: Uint8Array, from: number, length: number, key: Uint8Array, zeroKey: boolean, phase: number, output: Uint8Array, to: number): void {
  if (length === 0) return;
  if (zeroKey) {
    if (output !== source || to !== from) output.set(source.subarray(from, from + length), to);
    return;
  }
  for (let i = 0; i < 4; i++) rotated[i] = key[(i + phase) & 3]!;
  const piece = source.subarray(from, from + length);
  if (native !== null && length >= NATIVE_FROM_BYTES) native(piece, rotated, output, to, length);
  else maskLoop(piece, rotated, output, to, length);
}
