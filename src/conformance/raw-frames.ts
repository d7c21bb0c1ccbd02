// Writing WebSocket frames straight to a client's TCP socket, for floods: a flood of small
// messages through ws.send takes far longer than a device needs to reach its high-water mark.
// Only while nothing else writes to the socket (the client sends nothing else meanwhile).
import type { Socket } from 'node:net';
import { Encoder } from '../../protocol/index.js';
import type { WireClient } from './client.js';

/** The client's TCP socket under ws. */
export function socketOf(c: WireClient): Socket {
  return (c.ws as unknown as { _socket: Socket })._socket;
}

/** A client-to-server binary frame with an all-zero masking key (the payload stays as it is). */
export function maskedFrame(payload: Uint8Array): Buffer {
  const n = payload.length;
  const head = n < 126 ? [0x82, 0x80 | n] : n < 65536 ? [0x82, 0x80 | 126, n >> 8, n & 0xff] : undefined;
  if (head === undefined) throw new RangeError('frame too large for this helper');
  return Buffer.concat([Buffer.from(head), Buffer.alloc(4), payload]);
}

/** `count` ping frames with seqs from `first`, as one buffer. */
export function pingFrames(first: number, count: number, encoder = new Encoder()): Buffer {
  return Buffer.concat(Array.from({ length: count }, (_, i) => maskedFrame(encoder.encode({ op: 'ping', seq: first + i }))));
}
