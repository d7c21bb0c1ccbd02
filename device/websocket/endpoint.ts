// The device's server-side WebSocket endpoint (RFC 6455, binary messages, no extensions).
//
// Why hand-written: speed and control on the device's receive path. ws joins every message
// from the socket's reads into a fresh buffer and then unmasks it in a second pass; for a
// device streaming a BO that is an extra pass over every byte, a fresh 1 MiB allocation (and
// page faults) per message, and dead buffers for the GC. Here payloads are unmasked while they
// are copied into reusable pool buffers (frame-reader.ts, buffer-pool.ts), and the session
// gives each buffer back once its command is applied. ws stays on the driver, the conformance
// client, the dashboard and the bench's raw baseline, and can still carry the device
// (DeviceOptions.websocket = 'ws').
//
// Invariants
// - 'close' is emitted exactly once, when the socket has closed, with the peer's close code and
//   reason (1006 and '' when no close frame came); 'error' only when someone listens.
// - Input is processed in arrival order; while paused, no message or control frame is
//   delivered and the socket is not read.
// - Nothing the peer sent before it ended the connection is lost: after its FIN, input already
//   received is still delivered (honouring pause) before our side ends; when the socket closes
//   (reset, error, both sides ended), what is left is delivered at once, paused or not —
//   nothing remains to push back on, and ws does the same — and then 'close'. Only our own
//   cut (terminate, the close timeout) drops it.
// - Nothing here keeps the process alive after the socket closes (the close timer is unref'd
//   and cleared).
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { MessageBufferPool } from './buffer-pool.js';
import { cutReason } from './close.js';
import { FrameReader, type FrameSink, Opcode, WebSocketError } from './frame-reader.js';
import { closePayload, writeFrame } from './frame-writer.js';
import type { DeviceSocket } from './socket.js';

/** How long a close frame we sent waits for the peer's before the socket is cut (as ws). */
const CLOSE_TIMEOUT_MS = 30_000;
/** Automatic pongs the socket has not written yet before a pinging client is cut (as ws). */
const MAX_PENDING_PONGS = 60;

export class ServerWebSocket extends EventEmitter implements DeviceSocket {
  private readonly reader: FrameReader;
  /** Unprocessed reads, oldest first; `at` is where processing of the first one stopped. */
  private readonly input: Buffer[] = [];
  private at = 0;
  private processing = false;
  private paused = false;
  private closeSent = false;
  private closeReceived = false;
  /** A violation was found: no close frame will be read, so ours ends the connection. */
  private failed = false;
  /** The peer sent FIN: nothing more arrives; our side ends once the input is processed. */
  private inputEnded = false;
  /** The socket closed: remaining input is delivered regardless of pause. */
  private gone = false;
  /** We cut the connection ourselves: remaining input is dropped. */
  private cut = false;
  private closed = false;
  private closeCode = 1006;
  private closeReason = '';
  private pendingPongs = 0;
  private closeTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: Socket,
    head: Buffer,
    pool: MessageBufferPool,
    maxPayload: number,
  ) {
    super();
    this.reader = new FrameReader(this.sink(), pool, maxPayload);
    socket.setTimeout(0);
    socket.setNoDelay(true);
    if (head.length > 0) socket.unshift(head);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err) => this.onSocketError(err));
    socket.on('close', () => this.onClose());
  }

  get bufferedAmount(): number {
    return this.socket.writableLength;
  }

  send(data: Uint8Array, done: (err?: Error | null) => void): void {
    if (this.closeSent || this.closed || !this.socket.writable) {
      process.nextTick(done, new Error('WebSocket is not open'));
      return;
    }
    writeFrame(this.socket, Opcode.binary, data, done);
  }

  close(code: number, reason: string): void {
    if (this.closeSent || this.closed || !this.socket.writable) return;
    this.closeSent = true;
    writeFrame(this.socket, Opcode.close, closePayload(code, cutReason(reason)), (err) => {
      if (err === undefined || err === null) {
        if (this.closeReceived || this.failed) this.socket.end();
      }
    });
    this.closeTimer = setTimeout(() => this.terminate(), CLOSE_TIMEOUT_MS);
    this.closeTimer.unref();
  }

  terminate(): void {
    this.cut = true;
    this.socket.destroy();
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (!this.reader.done) this.socket.resume();
    // Reads that arrived before the pause took effect go first (before any new 'data').
    if (this.input.length > 0) process.nextTick(() => this.process());
  }

  // ---- input ----

  private onData(chunk: Buffer): void {
    if (this.reader.done) return;
    this.input.push(chunk);
    this.process();
  }

  private process(): void {
    if (this.processing) return;
    this.processing = true;
    try {
      while ((!this.paused || this.gone) && this.input.length > 0 && !this.reader.done && !this.cut) {
        const chunk = this.input[0]!;
        this.at = this.reader.read(chunk, this.at);
        if (this.at >= chunk.length) {
          this.input.shift();
          this.at = 0;
        }
      }
    } catch (e) {
      this.fail(e);
    } finally {
      this.processing = false;
    }
    if (this.reader.done || this.cut) this.discardInput();
    else if (this.inputEnded && this.input.length === 0) this.endInput();
  }

  private sink(): FrameSink {
    return {
      message: (data, isBinary, release) => {
        this.emit('message', data, isBinary, release);
      },
      ping: (data) => {
        if (this.closeSent || !this.socket.writable) return;
        if (this.pendingPongs >= MAX_PENDING_PONGS) return this.terminate();
        this.pendingPongs++;
        writeFrame(this.socket, Opcode.pong, Buffer.from(data), () => this.pendingPongs--);
      },
      pong: () => {},
      close: (code, reason) => {
        this.closeReceived = true;
        this.closeCode = code;
        this.closeReason = reason;
        // Echo the code and reason (1005, "no status", echoes as an empty close frame), then end.
        if (this.closeSent) this.socket.end();
        else this.close(code, reason);
      },
    };
  }

  /**
   * A violation (WebSocketError) or a listener's exception: close with its code, report it. If
   * our close frame is already out, the peer's will not be read any more: end now.
   */
  private fail(e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    this.failed = true;
    this.reader.stop();
    if (this.closeSent) this.socket.end();
    else this.close(e instanceof WebSocketError ? e.closeCode : 1011, e instanceof WebSocketError ? e.message : 'internal error');
    this.report(err);
  }

  /** Input after a close frame or a violation is not read; the socket keeps flowing to see FIN. */
  private discardInput(): void {
    this.input.length = 0;
    this.at = 0;
    if (!this.closed) this.socket.resume();
  }

  /** The peer half-closed: deliver what it sent first (process() ends our side after it). */
  private onEnd(): void {
    this.inputEnded = true;
    this.process();
  }

  /** All input of a half-closed peer is processed: a message it left unfinished never completes. */
  private endInput(): void {
    this.reader.stop();
    this.socket.end();
  }

  private onSocketError(err: Error): void {
    this.report(err);
    this.socket.destroy();
  }

  private report(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private onClose(): void {
    if (this.closed) return;
    clearTimeout(this.closeTimer);
    if (!this.cut && !this.reader.done) {
      // Reads the socket still buffers (it was paused) come after those already taken.
      for (let chunk: Buffer | null; (chunk = this.socket.read() as Buffer | null) !== null; ) this.input.push(chunk);
      this.gone = true;
      this.process();
    }
    this.closed = true;
    this.reader.stop();
    this.input.length = 0;
    this.emit('close', this.closeCode, this.closeReason);
  }
}
