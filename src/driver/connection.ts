import { WebSocket, type ClientOptions } from 'ws';
import {
  type Command, type DeviceMessage, type DeviceWrite, Encoder, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN,
  ProtocolError, type Signaled, type Welcome, decodeDeviceFrame,
} from '../../protocol/index.js';
import { CancelledError, DeviceError, DeviceLostError } from './errors.js';

/** A command as the caller builds it: the connection assigns seq. */
export type Outgoing = Command extends infer C ? (C extends { seq: number } ? Omit<C, 'seq'> : never) : never;

export interface ConnectionOptions {
  url: string;
  token?: string;
  name?: string;
  /** Largest frame accepted from the device (default 64 MiB). */
  maxPayload?: number;
  /**
   * Send frames with an all-zero masking key (default false). RFC 6455 wants a
   * random key from clients (it protects proxies that cache by content); with a
   * zero key ws sends our buffer as is instead of copying it into a masked
   * copy, which saves one copy of every DMA byte. Only for trusted links
   * (loopback to a local device); see docs/performance.md for the effect.
   */
  zeroMask?: boolean;
  /** Reconnect after an unexpected close, with exponential backoff (default true). */
  reconnect?: boolean;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Called for every new device session (the first and each after a reconnect), before anything is sent on it. */
  onSession?: (welcome: Welcome) => void;
  onDeviceWrite?: (msg: DeviceWrite) => void;
  /** Called when a session ends unexpectedly (before reconnecting). */
  onLost?: (reason: string) => void;
  log?: (line: string) => void;
}

/** The ws client options of a device connection (the benchmarks' raw ws baseline uses the same). */
export function wsClientOptions(opts: Pick<ConnectionOptions, 'maxPayload' | 'zeroMask'> = {}): ClientOptions {
  const o: ClientOptions = { perMessageDeflate: false, maxPayload: opts.maxPayload ?? 64 << 20 };
  if (opts.zeroMask === true) o.generateMask = zeroMask;
  return o;
}

function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

interface Waiter<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

/**
 * The driver's end of the wire: one WebSocket to the device, hello/welcome,
 * per-connection sequence numbers, replies matched by seq, fences as promises.
 * When the socket closes, every pending fence and request rejects with
 * DeviceLostError (never hangs); with `reconnect`, a new session follows with
 * backoff and onSession lets the owner redefine and resync.
 */
export class DeviceConnection {
  welcome: Welcome | null = null;
  /** Sessions established so far. */
  sessions = 0;
  bytesSent = 0;
  /** deviceWrite announcements processed in this session (the protocol's `seen`). */
  seenDeviceWrites = 0;
  private ws: WebSocket | null = null;
  private seq = 0;
  private fenceId = 0;
  private readonly fences = new Map<number, Waiter<Signaled>>();
  private readonly replies = new Map<number, Waiter<DeviceMessage>>();
  /** Bytes handed to ws.send whose callback has not run yet. */
  private unsent = 0;
  private readonly drainWaiters: Array<{ lowWater: number; wake: () => void }> = [];
  private opened: Waiter<Welcome> | null = null;
  private closing = false;
  private backoff: number;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly encoder = new Encoder();

  constructor(readonly options: ConnectionOptions) {
    this.backoff = options.backoffInitialMs ?? 50;
  }

  get isOpen(): boolean {
    return this.welcome !== null && this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Bytes given to send() that the socket has not taken yet (ws's bufferedAmount plus frames still queued in ws). */
  get bufferedAmount(): number {
    return Math.max(this.unsent, this.ws?.bufferedAmount ?? 0);
  }

  /** Open the first session; resolves with its welcome. */
  connect(): Promise<Welcome> {
    return new Promise<Welcome>((resolve, reject) => {
      this.opened = { resolve, reject };
      this.open();
    });
  }

  /** Resolves once a session is open (immediately when it is). */
  async ready(): Promise<Welcome> {
    if (this.isOpen) return this.welcome!;
    if (this.closing) throw new CancelledError('connection closed');
    return new Promise<Welcome>((resolve, reject) => {
      const prev = this.opened;
      this.opened = {
        resolve: (w) => (prev?.resolve(w), resolve(w)),
        reject: (e) => (prev?.reject(e), reject(e)),
      };
    });
  }

  /** Send a command; returns its seq. Throws DeviceLostError when no session is open. */
  send(cmd: Outgoing, done?: (err?: Error) => void): number {
    if (!this.isOpen) throw new DeviceLostError('no device session');
    const seq = ++this.seq;
    const frame = this.encoder.encode({ ...cmd, seq } as Command);
    this.sendFrame(frame, done);
    return seq;
  }

  /** Next seq, for callers that encode a frame themselves (see dma-encoder). */
  nextSeq(): number {
    if (!this.isOpen) throw new DeviceLostError('no device session');
    return ++this.seq;
  }

  /** Send an already encoded frame; `done` runs when ws has handed it to the socket. */
  sendFrame(frame: Uint8Array, done?: (err?: Error) => void): void {
    if (!this.isOpen) throw new DeviceLostError('no device session');
    this.bytesSent += frame.length;
    const n = frame.length;
    this.unsent += n;
    this.ws!.send(frame, { binary: true }, (err) => {
      this.unsent -= n;
      this.wakeDrained();
      done?.(err);
    });
  }

  /** Send a fence; resolves when the device signals it ok, rejects with DeviceError / DeviceLostError. */
  fence(): Promise<Signaled> {
    const [fence, signaled] = this.expectFence();
    try {
      this.send({ op: 'fence', fence, seen: this.seenDeviceWrites });
    } catch (e) {
      this.dropFence(fence, e as Error);
    }
    return signaled;
  }

  /**
   * Allocate a fence id the caller will send inside a DMA frame (docs/protocol.md §6.5), and
   * the promise of its signal. If the frame is never sent, call dropFence.
   */
  expectFence(): [number, Promise<Signaled>] {
    const fence = ++this.fenceId;
    return [fence, new Promise<Signaled>((resolve, reject) => this.fences.set(fence, { resolve, reject }))];
  }

  dropFence(fence: number, err: Error): void {
    this.fences.get(fence)?.reject(err);
    this.fences.delete(fence);
  }

  /** Send a command that gets a reply carrying the same seq (readback, digest, stats, ping). */
  request<T extends DeviceMessage>(cmd: Outgoing): Promise<T> {
    let seq: number;
    try {
      seq = this.send(cmd);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<T>((resolve, reject) => this.replies.set(seq, { resolve: resolve as (m: DeviceMessage) => void, reject }));
  }

  /** Resolves when the socket's queue is at or below `lowWater` bytes (send-side flow control). */
  drained(lowWater: number): Promise<void> {
    if (this.unsent <= lowWater || !this.isOpen) return Promise.resolve();
    return new Promise<void>((wake) => this.drainWaiters.push({ lowWater, wake }));
  }

  private wakeDrained(): void {
    for (let i = this.drainWaiters.length - 1; i >= 0; i--) {
      const w = this.drainWaiters[i]!;
      if (this.unsent <= w.lowWater || !this.isOpen) {
        this.drainWaiters.splice(i, 1);
        w.wake();
      }
    }
  }

  /** Close for good: pending work rejects with CancelledError. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.failPending(new CancelledError('connection closed'));
    const ws = this.ws;
    this.ws = null;
    this.welcome = null;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        ws.close(1000, 'driver closing');
        setTimeout(() => (ws.terminate(), resolve()), 500).unref();
      });
    }
  }

  private open(): void {
    const ws = new WebSocket(this.options.url, wsClientOptions(this.options));
    this.ws = ws;
    this.seq = 0;
    this.seenDeviceWrites = 0;
    ws.binaryType = 'nodebuffer';
    ws.on('error', (err) => this.options.log?.(`device connection error: ${err.message}`));
    ws.on('open', () => {
      const hello = { op: 'hello' as const, min: PROTOCOL_VERSION_MIN, max: PROTOCOL_VERSION_MAX, token: this.options.token, name: this.options.name ?? 'vgpu-dirty driver' };
      ws.send(this.encoder.encode(hello), { binary: true });
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return this.protocolFailure(ws, 'text frame from device');
      const msg = decodeDeviceFrame(data);
      if (msg instanceof ProtocolError) return this.protocolFailure(ws, msg.message);
      this.dispatch(msg);
    });
    ws.on('close', (code, reason) => this.onClose(ws, code, reason.toString()));
  }

  private dispatch(msg: DeviceMessage): void {
    switch (msg.op) {
      case 'welcome':
        this.welcome = msg;
        this.sessions++;
        this.backoff = this.options.backoffInitialMs ?? 50;
        this.options.onSession?.(msg);
        this.opened?.resolve(msg);
        this.opened = null;
        return;
      case 'signaled': {
        // Fences signal in order: one still pending below this id will never be signalled
        // (its frame was rejected before the device could read it). Never leave it hanging.
        for (const [id, pending] of this.fences) {
          if (id >= msg.fence) break;
          this.fences.delete(id);
          pending.reject(new DeviceError('fence_lost', `fence ${id} was never signalled; fence ${msg.fence} was`, undefined));
        }
        const w = this.fences.get(msg.fence);
        if (!w) return;
        this.fences.delete(msg.fence);
        if (msg.ok) w.resolve(msg);
        else w.reject(new DeviceError(msg.code ?? 'failed', msg.message ?? 'a command before this fence failed', msg.errSeq));
        return;
      }
      case 'deviceWrite':
        this.options.onDeviceWrite?.(msg);
        this.seenDeviceWrites++;
        return;
      case 'error': {
        const w = msg.seq !== undefined ? this.replies.get(msg.seq) : undefined;
        if (w) {
          this.replies.delete(msg.seq!);
          w.reject(new DeviceError(msg.code, msg.message, msg.seq));
        } else {
          this.options.log?.(`device error ${msg.code}${msg.seq !== undefined ? ` (seq ${msg.seq})` : ''}: ${msg.message}`);
        }
        return;
      }
      default: {
        const w = this.replies.get(msg.seq);
        if (!w) return;
        this.replies.delete(msg.seq);
        w.resolve(msg);
      }
    }
  }

  private protocolFailure(ws: WebSocket, why: string): void {
    this.options.log?.(`device sent a bad frame: ${why}`);
    ws.close(1002, 'protocol error');
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (this.ws !== ws) return;
    this.ws = null;
    const wasOpen = this.welcome !== null;
    this.welcome = null;
    const why = `device connection closed (${code}${reason ? ` ${reason}` : ''})`;
    this.failPending(new DeviceLostError(why));
    this.unsent = 0;
    this.wakeDrained();
    if (this.closing) return;
    if (wasOpen) this.options.onLost?.(why);
    if (this.options.reconnect === false) {
      this.opened?.reject(new DeviceLostError(why));
      this.opened = null;
      return;
    }
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.options.backoffMaxMs ?? 2000);
    this.options.log?.(`${why}; reconnecting in ${delay} ms`);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.closing) this.open();
    }, delay);
  }

  private failPending(err: Error): void {
    for (const w of this.fences.values()) w.reject(err);
    this.fences.clear();
    for (const w of this.replies.values()) w.reject(err);
    this.replies.clear();
  }
}
