import * as wsModule from 'ws';
import type { WebSocket } from 'ws';

/** ws exports Sender at run time; its type declarations do not. */
const Sender = (wsModule as unknown as { Sender?: Partial<SenderStatics> }).Sender;

/**
 * Sends a binary message whose bytes the caller gives up, masking them in place.
 *
 * A client must mask what it sends (RFC 6455 §5.3). `ws.send()` treats every caller's buffer as
 * read-only, so it allocates a second buffer of the message's size and writes the masked bytes
 * there: one more pass over every DMA byte and a 1 MiB allocation per batch that lives until
 * the next GC (the driver's RSS above BO size). ws's own framing function, `Sender.frame`
 * (public and static), masks in place when told the bytes are not read-only; this module gives
 * it the staging buffer, which the writeback engine refills from scratch before its next use,
 * and hands the frame to ws's sender as `ws.send()` would. Written against ws's internals on
 * purpose, for speed: when those are not as expected (no sender, a compression extension, the
 * sender busy with queued work) it falls back to `ws.send()`, which is always correct.
 */
export function sendOwned(ws: WebSocket, data: Uint8Array, generateMask: ((mask: Buffer) => void) | undefined, done: (err?: Error) => void): void {
  const sender = (ws as unknown as { _sender?: SenderInternals })._sender;
  if (!canFrameInPlace(ws, sender)) {
    ws.send(data, { binary: true }, done);
    return;
  }
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const frame = Sender!.frame!(buf, { fin: true, opcode: 2, mask: true, readOnly: false, rsv1: false, generateMask });
  sender!.sendFrame!(frame, done);
}

interface SenderInternals {
  /** 0 (DEFAULT) when nothing is queued behind a compression or a blob read. */
  _state?: number;
  sendFrame?: (list: Buffer[], cb: (err?: Error) => void) => void;
}

interface SenderStatics {
  frame(data: Buffer, options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean; generateMask?: (mask: Buffer) => void }): Buffer[];
}

function canFrameInPlace(ws: WebSocket, sender: SenderInternals | undefined): boolean {
  return ws.readyState === 1 && sender !== undefined && typeof sender.sendFrame === 'function' && sender._state === 0 &&
    ws.extensions === '' && typeof Sender?.frame === 'function';
}
