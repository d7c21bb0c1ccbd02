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
// - Nothing here keeps the process alive after the socket closes (the close timer is unref'd
//   and cleared).
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { MessageBufferPool } from './buffer-pool.js';
import { FrameReader, type FrameSink, Opcode, WebSocketError } from './frame-reader.js';
import { closePayload, writeFrame } from './frame-writer.js';
import type { DeviceSocket } from './socket.js';

/** How long a close frame we sent waits for the peer's before the socket is cut (as ws). */
const CLOSE_TIMEOUT_MS = 30_000;
/** Automatic pongs the socket has not written yet before a pinging client is cut (as ws). */
const MAX_PENDING_PONGS = 60;
/** Close reasons are cut to this many bytes (a control frame holds 125, the code takes 2). */
const MAX_REASON_BYTES = 123;

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
    this.closeTimer = setTimeout(() => this.socket.destroy(), CLOSE_TIMEOUT_MS);
    this.closeTimer.unref();
  }

  terminate(): void {
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
      while (!this.paused && this.input.length > 0 && !this.reader.done && !this.socket.destroyed) {
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
    if (this.reader.done) this.discardInput();
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
        // Echo the code (1005, "no status", echoes as an empty close frame), then end.
        if (this.closeSent) this.socket.end();
        else this.close(code, '');
      },
    };
  }

  /** A violation (WebSocketError) or a listener's exception: close with its code, report it. */
  private fail(e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    this.failed = true;
    this.reader.stop();
    this.close(e instanceof WebSocketError ? e.closeCode : 1011, e instanceof WebSocketError ? e.message : 'internal error');
    this.report(err);
  }

  /** Input after a close frame or a violation is not read; the socket keeps flowing to see FIN. */
  private discardInput(): void {
    this.input.length = 0;
    this.at = 0;
    if (!this.closed) this.socket.resume();
  }

  private onEnd(): void {
    // The peer half-closed: finish our side too (after our close frame, if one is queued).
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
    this.closed = true;
    clearTimeout(this.closeTimer);
    this.reader.stop();
    this.input.length = 0;
    this.emit('close', this.closeCode, this.closeReason);
  }
}

/** Cuts a close reason to what a close frame holds, at a character boundary. */
export function cutReason(reason: string): string {
  if (Buffer.byteLength(reason) <= MAX_REASON_BYTES) return reason;
  const chars = Array.from(reason);
  while (Buffer.byteLength(chars.join('')) > MAX_REASON_BYTES) chars.pop();
  return chars.join('');
}
