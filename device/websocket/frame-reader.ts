// Reads client frames (RFC 6455 §5) from a socket's reads, across any split of headers and
// payloads between reads, and validates them as ws's server does with the device's options
// (no extensions, maxPayload). Data payloads are unmasked while they are copied into a message
// buffer from the pool (one pass per byte); fragments are joined into it directly. A message
// that lies whole within one read is unmasked in place and handed out as a view of that read:
// Node gives every socket read a buffer of its own and never reuses it, so the view stays valid.
//
// Invariants
// - At most one data message is being assembled; control frames may come between its fragments.
// - A message's total size is checked against maxPayload from each frame header, before any
//   of that frame's payload is buffered (close 1009).
// - After a close frame or an error the reader takes no more input (done).
// - A text message is delivered only as valid UTF-8 (checked whole, so a character split
//   between fragments is fine); otherwise close 1007 (RFC 6455 §8.1).
import { isUtf8 } from 'node:buffer';
import { POISON_BYTE, type MessageBufferPool } from './buffer-pool.js';
import { isValidCloseCode, WsClose } from './close.js';
import { unmaskCopy } from './mask.js';

export const Opcode = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** A frame-level violation; the endpoint closes with `closeCode`. */
export class WebSocketError extends Error {
  constructor(
    readonly closeCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'WebSocketError';
  }
}

/** What the reader produces, in arrival order. */
export interface FrameSink {
  /**
   * A complete data message. `release` gives its buffer back to the pool (no-op for a view of a
   * socket read); the data must not be read after it.
   */
  message(data: Buffer, isBinary: boolean, release: () => void): void;
  /** `data` is the reader's scratch: copy it to keep it. */
  ping(data: Buffer): void;
  pong(data: Buffer): void;
  /** A close frame: its code (1005 when it carried none) and reason. */
  close(code: number, reason: string): void;
}

const MAX_CONTROL_PAYLOAD = 125;
const MAX_HEADER_BYTES = 14;
const EMPTY = Buffer.alloc(0);
const noop = (): void => {};

/** Header bytes implied by a frame's second byte (length form and mask bit). */
function headerBytes(b1: number): number {
  const len7 = b1 & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
}

export class FrameReader {
  /** A header split between reads is gathered here. */
  private readonly head = Buffer.alloc(MAX_HEADER_BYTES);
  private headLength = 0;
  private inPayload = false;
  private isDone = false;
  // The current frame.
  private fin = false;
  private opcode = 0;
  private payloadLength = 0;
  private payloadRead = 0;
  private readonly key = Buffer.alloc(4);
  private zeroKey = false;
  // The data message being assembled: its first opcode (-1 = none), buffer and bytes so far.
  private messageOpcode = -1;
  private message: Buffer | null = null;
  private messageLength = 0;
  private readonly control = Buffer.alloc(MAX_CONTROL_PAYLOAD);

  constructor(
    private readonly sink: FrameSink,
    private readonly pool: MessageBufferPool,
    private readonly maxPayload: number,
  ) {}

  /** True after a close frame or an error: further input is ignored. */
  get done(): boolean {
    return this.isDone;
  }

  /**
   * Consumes `chunk` from `at` until its end or until one message or control frame has been
   * delivered (so the caller can stop between them); returns where it stopped. Throws
   * WebSocketError on a violation (the reader is then done).
   */
  read(chunk: Buffer, at: number): number {
    try {
      while (at < chunk.length && !this.isDone) {
        if (this.inPayload) {
          at = this.readPayload(chunk, at);
          if (!this.inPayload && this.frameEnds()) return at;
          continue;
        }
        at = this.readHeader(chunk, at);
        if (!this.inPayload) return at; // header incomplete (chunk used up), or a frame already delivered
      }
      return at;
    } catch (e) {
      if (e instanceof WebSocketError) this.stop();
      throw e;
    }
  }

  /** Gives back a partly assembled message; the reader takes no more input. */
  stop(): void {
    this.isDone = true;
    if (this.message !== null) this.pool.release(this.message);
    this.message = null;
  }

  /** Parses a header (gathering it across reads); may deliver a frame without payload. */
  private readHeader(chunk: Buffer, at: number): number {
    let src: Buffer;
    let p: number;
    const avail = chunk.length - at;
    if (this.headLength === 0 && avail >= 2 && avail >= headerBytes(chunk[at + 1]!)) {
      src = chunk;
      p = at;
      at += headerBytes(chunk[at + 1]!);
    } else {
      const need = this.headLength >= 2 ? headerBytes(this.head[1]!) : 2;
      const n = Math.min(need - this.headLength, avail);
      chunk.copy(this.head, this.headLength, at, at + n);
      this.headLength += n;
      at += n;
      if (this.headLength < 2 || this.headLength < headerBytes(this.head[1]!)) return at;
      src = this.head;
      p = 0;
      this.headLength = 0;
    }
    this.parseHeader(src, p);
    if (this.payloadLength === 0) {
      this.frameEnds();
      return at;
    }
    // Fast path: an unfragmented data message whose payload is all in this read.
    if (this.fin && this.opcode !== Opcode.continuation && this.opcode < 8 && chunk.length - at >= this.payloadLength) {
      const end = at + this.payloadLength;
      unmaskCopy(chunk, at, this.payloadLength, this.key, this.zeroKey, 0, chunk, at);
      this.messageOpcode = -1;
      const view = chunk.subarray(at, end);
      if (this.opcode === Opcode.text) checkText(view);
      this.sink.message(view, this.opcode === Opcode.binary, this.pool.poison ? () => void view.fill(POISON_BYTE) : noop);
      return end;
    }
    if (this.opcode < 8) this.reserve(this.messageLength + this.payloadLength);
    this.inPayload = true;
    this.payloadRead = 0;
    return at;
  }

  private parseHeader(b: Buffer, p: number): void {
    const b0 = b[p]!;
    const b1 = b[p + 1]!;
    if ((b0 & 0x70) !== 0) throw new WebSocketError(WsClose.protocolError, 'RSV bits set without a negotiated extension');
    this.fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    if ((b1 & 0x80) === 0) throw new WebSocketError(WsClose.protocolError, 'client frames must be masked');
    let length = b1 & 0x7f;
    let q = p + 2;
    if (length === 126) {
      length = b.readUInt16BE(q);
      q += 2;
    } else if (length === 127) {
      const high = b.readUInt32BE(q);
      if (high >= 0x80000000) throw new WebSocketError(WsClose.protocolError, '64-bit payload length with the most significant bit set');
      length = high * 2 ** 32 + b.readUInt32BE(q + 4);
      q += 8;
    }
    if (opcode >= 8) {
      if (opcode > Opcode.pong) throw new WebSocketError(WsClose.protocolError, `invalid opcode ${opcode}`);
      if (!this.fin) throw new WebSocketError(WsClose.protocolError, 'fragmented control frame');
      if (length > MAX_CONTROL_PAYLOAD) throw new WebSocketError(WsClose.protocolError, `control frame payload of ${length} bytes (at most 125)`);
    } else if (opcode === Opcode.continuation) {
      if (this.messageOpcode === -1) throw new WebSocketError(WsClose.protocolError, 'continuation frame without a message to continue');
    } else if (opcode === Opcode.text || opcode === Opcode.binary) {
      if (this.messageOpcode !== -1) throw new WebSocketError(WsClose.protocolError, 'new data frame inside a fragmented message');
      this.messageOpcode = opcode;
      this.messageLength = 0;
    } else {
      throw new WebSocketError(WsClose.protocolError, `invalid opcode ${opcode}`);
    }
    if (opcode < 8 && this.messageLength + length > this.maxPayload) {
      throw new WebSocketError(WsClose.tooBig, `message over maxPayload (${this.maxPayload} bytes)`);
    }
    this.opcode = opcode;
    this.payloadLength = length;
    b.copy(this.key, 0, q, q + 4);
    this.zeroKey = (this.key[0]! | this.key[1]! | this.key[2]! | this.key[3]!) === 0;
  }

  /** Makes the message buffer hold `bytes`; growing copies what is there (fragments only). */
  private reserve(bytes: number): void {
    const old = this.message;
    if (old !== null && old.length >= bytes) return;
    const grown = this.pool.acquire(old === null ? bytes : Math.max(bytes, Math.min(2 * old.length, this.maxPayload)));
    if (old !== null) {
      old.copy(grown, 0, 0, this.messageLength);
      this.pool.release(old);
    }
    this.message = grown;
  }

  private readPayload(chunk: Buffer, at: number): number {
    const n = Math.min(this.payloadLength - this.payloadRead, chunk.length - at);
    if (this.opcode >= 8) unmaskCopy(chunk, at, n, this.key, this.zeroKey, this.payloadRead, this.control, this.payloadRead);
    else unmaskCopy(chunk, at, n, this.key, this.zeroKey, this.payloadRead, this.message!, this.messageLength + this.payloadRead);
    this.payloadRead += n;
    if (this.payloadRead === this.payloadLength) this.inPayload = false;
    return at + n;
  }

  /** The current frame is complete; returns whether something was delivered. */
  private frameEnds(): boolean {
    this.inPayload = false;
    if (this.opcode >= 8) {
      this.deliverControl(this.control.subarray(0, this.payloadLength));
      return true;
    }
    this.messageLength += this.payloadLength;
    if (!this.fin) return false;
    const buffer = this.message;
    const data = buffer === null ? EMPTY : buffer.subarray(0, this.messageLength);
    const isBinary = this.messageOpcode === Opcode.binary;
    if (!isBinary) checkText(data); // on failure, stop() gives the buffer back
    this.message = null;
    this.messageOpcode = -1;
    this.messageLength = 0;
    let released = buffer === null;
    this.sink.message(data, isBinary, () => {
      if (released) return;
      released = true;
      this.pool.release(buffer!);
    });
    return true;
  }

  private deliverControl(payload: Buffer): void {
    if (this.opcode === Opcode.ping) return this.sink.ping(payload);
    if (this.opcode === Opcode.pong) return this.sink.pong(payload);
    if (payload.length === 1) throw new WebSocketError(WsClose.protocolError, 'close frame with a 1-byte payload');
    let code: number = WsClose.noStatus;
    let reason = '';
    if (payload.length >= 2) {
      code = payload.readUInt16BE(0);
      if (!isValidCloseCode(code)) throw new WebSocketError(WsClose.protocolError, `invalid close code ${code}`);
      const text = payload.subarray(2);
      if (!isUtf8(text)) throw new WebSocketError(WsClose.invalidData, 'close reason is not valid UTF-8');
      reason = text.toString('utf8');
    }
    this.stop();
    this.sink.close(code, reason);
  }
}

function checkText(data: Buffer): void {
  if (!isUtf8(data)) throw new WebSocketError(WsClose.invalidData, 'text message is not valid UTF-8');
}
