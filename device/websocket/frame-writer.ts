// Writes server frames (RFC 6455 §5.2): unmasked, FIN set, never fragmented. The payload is
// handed to the socket as it is (no copy) after a header of its own, both in one writev; small
// payloads are copied behind the header instead, one buffer being cheaper than two.
import type { Writable } from 'node:stream';
import { isValidCloseCode } from './close.js';

/** Payloads up to this many bytes are joined with their header into one buffer. */
const JOIN_BELOW_BYTES = 1024;

/** Bytes of a server frame header for a payload of `length` bytes. */
export function headerLength(length: number): number {
  return length < 126 ? 2 : length < 0x10000 ? 4 : 10;
}

/** Writes a frame header for `opcode` and `length` at `at` of `target`. */
export function writeHeader(target: Buffer, at: number, opcode: number, length: number): void {
  target[at] = 0x80 | opcode;
  if (length < 126) {
    target[at + 1] = length;
  } else if (length < 0x10000) {
    target[at + 1] = 126;
    target.writeUInt16BE(length, at + 2);
  } else {
    target[at + 1] = 127;
    target.writeUInt32BE(Math.floor(length / 2 ** 32), at + 2);
    target.writeUInt32BE(length >>> 0, at + 6);
  }
}

/**
 * Writes one frame; `done` runs when the socket has taken it (with an error if it could not),
 * as for any socket write.
 */
export function writeFrame(socket: Writable, opcode: number, payload: Uint8Array, done?: (err?: Error | null) => void): void {
  const h = headerLength(payload.length);
  if (payload.length < JOIN_BELOW_BYTES) {
    const frame = Buffer.allocUnsafe(h + payload.length);
    writeHeader(frame, 0, opcode, payload.length);
    frame.set(payload, h);
    socket.write(frame, done);
    return;
  }
  const header = Buffer.allocUnsafe(h);
  writeHeader(header, 0, opcode, payload.length);
  socket.cork();
  socket.write(header);
  socket.write(payload, done);
  socket.uncork();
}

/**
 * The payload of a close frame: code and UTF-8 reason. A code that may not be sent (1005, "no
 * status", and the other reporting-only codes) gives an empty payload: the frame says no code.
 */
export function closePayload(code: number, reason: string): Buffer {
  if (!isValidCloseCode(code)) return Buffer.alloc(0);
  const payload = Buffer.allocUnsafe(2 + Buffer.byteLength(reason));
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2);
  return payload;
}
