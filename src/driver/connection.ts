import { WebSocket, type ClientOptions } from 'ws';
import {
  type Command, type DeviceMessage, type DeviceWrite, Encoder, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN,
  ProtocolError, type Role, type Signaled, type Welcome, decodeDeviceFrame,
} from '../../protocol/index.js';
import { CancelledError, ConnectTimeoutError, DeviceError, DeviceLostError, DeviceRefusedError } from './errors.js';
import { sendOwned } from './owned-send.js';

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
  /** Called once when the connection gives up for good (the device refused it permanently). */
  onFailed?: (err: Error) => void;
  log?: (line: string) => void;
  /** Role announced in hello (default 'driver'; 'control' for a device-side actor, docs/protocol.md §6.8). */
  role?: Role;
  /**
   * Longest wait for a fence's signal or a request's reply (default 30000 ms). A device
   * that stays silent longer is treated as lost: the socket is cut, everything pending
   * rejects with DeviceLostError, and (with `reconnect`) a new session is opened.
   */
  replyTimeoutMs?: number;
  /** Longest wait for welcome once the socket is open, per attempt (default 10000 ms). */
  helloTimeoutMs?: number;
}

/** Bounds of connect(): it settles within `timeoutMs`, after `attempts` failures, or on abort. */
export interface ConnectOptions {
  /** Give up when no session is established within this many ms (default 10000). */
  timeoutMs?: number;
  /** Give up after this many failed attempts (default: retry until the timeout). */
  attempts?: number;
  signal?: AbortSignal;
}

/** Refusals that no retry can cure: connect and reconnect stop at once. */
const PERMANENT_REFUSALS: ReadonlySet<string> = new Set(['bad_token', 'version_unsupported', 'forbidden']);

/**
 * How a command that gets no reply of its own (a write, a define) turned out:
 * `failed` when the device answers its seq with an error, `applied` once a later
 * fence is signalled without one (fences are signalled after everything before
 * them was applied or rejected, docs/protocol.md §5).
 */
export interface CommandWatch {
  failed(err: DeviceError): void;
  applied?(): void;
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

/** A fence or reply the device owes, and when it is overdue. */
interface Owed<T> extends Waiter<T> {
  deadline: number;
}

/**
 * The driver's end of the wire: one WebSocket to the device, hello/welcome,
 * per-connection sequence numbers, replies matched by seq, fences as promises,
 * and the outcome of each unanswered command (watch) attributed by its seq.
 *
 * Nothing waits without a bound: connect() has a timeout, an attempt limit and
 * an AbortSignal; a fence or reply overdue by replyTimeoutMs cuts the session.
 * When the socket closes, every pending fence and request rejects with
 * DeviceLostError; with `reconnect`, a new session follows with backoff and
 * onSession lets the owner redefine and resync. A permanent refusal
 * (bad_token, version_unsupported, forbidden) ends the connection for good.
 * Timers never keep the process alive on their own: a reconnect timer holds
 * the event loop only while someone awaits ready().
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
  /** Pending fences by id; ids increase, so the first entry is the oldest. */
  private readonly fences = new Map<number, Owed<Signaled>>();
  /** Pending requests by seq, oldest first. */
  private readonly replies = new Map<number, Owed<DeviceMessage>>();
  /** Unanswered commands whose outcome someone wants, by seq (ascending). */
  private readonly watched = new Map<number, CommandWatch>();
  private watchdog: NodeJS.Timeout | null = null;
  /** Pings a quiet session before the device's idleTimeout closes it. */
  private keepalive: NodeJS.Timeout | null = null;
  private lastSentAt = 0;
  private helloTimer: NodeJS.Timeout | null = null;
  /** Why the current socket is being cut (watchdog, hello timeout), for the DeviceLostError. */
  private cutReason: string | null = null;
  /** Set once the device refused us permanently, or connect() gave up: nothing reconnects. */
  private failure: Error | null = null;
  /** The last failed attempt's transport error or close, for the message when connect() gives up. */
  private lastProblem = '';
  /** Failed attempts of the connect() in progress. */
  private failedAttempts = 0;
  private attemptLimit = Infinity;
  /** Bytes handed to ws.send whose callback has not run yet. */
  private unsent = 0;
  private readonly drainWaiters: Array<{ lowWater: number; wake: () => void }> = [];
  private opened: Waiter<Welcome> | null = null;
  private closing = false;
  private backoff: number;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly encoder = new Encoder();
  /** welcome.features as a set, and the list it was made from (see offers). */
  private featureSet: ReadonlySet<string> = new Set();
  private featuresOf: readonly string[] | null = null;
  /** Told of every deviceWrite before options.onDeviceWrite (the writeback engine's last-sent copies). */
  private readonly deviceWriteObservers: Array<(msg: DeviceWrite) => void> = [];

  constructor(readonly options: ConnectionOptions) {
    this.backoff = options.backoffInitialMs ?? 50;
  }

  /** Whether the current session's device announced `feature` (docs/protocol.md §6.2): optional ops and fields are used only then. */
  offers(feature: string): boolean {
    const features = this.welcome?.features;
    if (features === undefined) return false;
    // Asked several times per frame: a set per features list rather than a scan of it each time.
    if (this.featuresOf !== features) {
      this.featureSet = new Set(features);
      this.featuresOf = features;
    }
    return this.featureSet.has(feature);
  }

  get isOpen(): boolean {
    return this.welcome !== null && this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Bytes given to send() that the socket has not taken yet (ws's bufferedAmount plus frames still queued in ws). */
  get bufferedAmount(): number {
    return Math.max(this.unsent, this.ws?.bufferedAmount ?? 0);
  }

  /**
   * Open the first session; resolves with its welcome. Retries (with backoff)
   * while the device is unreachable, and rejects with ConnectTimeoutError when
   * `timeoutMs` or `attempts` run out, DeviceRefusedError at once on a
   * permanent refusal, or the signal's reason on abort. A connection whose
   * connect() failed is finished: make a new one to try again.
   */
  connect(opts: ConnectOptions = {}): Promise<Welcome> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    this.attemptLimit = opts.attempts ?? Infinity;
    if (opts.attempts !== undefined && (!Number.isSafeInteger(opts.attempts) || opts.attempts < 1)) {
      return Promise.reject(new RangeError(`attempts must be an integer ≥ 1, got ${opts.attempts}`));
    }
    if (opts.signal?.aborted) return Promise.reject(opts.signal.reason as Error);
    return new Promise<Welcome>((resolve, reject) => {
      const onAbort = (): void => this.giveUp(opts.signal!.reason as Error);
      const timer = setTimeout(() => {
        const last = this.lastProblem ? ` (last: ${this.lastProblem})` : '';
        this.giveUp(new ConnectTimeoutError(`no device session at ${this.options.url} within ${timeoutMs} ms${last}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.opened = { resolve: (w) => (done(), resolve(w)), reject: (e) => (done(), reject(e)) };
      this.open();
    });
  }

  /** Resolves once a session is open (immediately when it is); rejects when the connection has given up or closes. */
  async ready(): Promise<Welcome> {
    if (this.isOpen) return this.welcome!;
    if (this.failure !== null) throw this.failure;
    if (this.closing) throw new CancelledError('connection closed');
    this.retryTimer?.ref(); // someone waits for the reconnect now: it may hold the process
    return new Promise<Welcome>((resolve, reject) => {
      const prev = this.opened;
      this.opened = {
        resolve: (w) => (prev?.resolve(w), resolve(w)),
        reject: (e) => (prev?.reject(e), reject(e)),
      };
    });
  }

  /**
   * Learn how an unanswered command turned out (see CommandWatch). Call right
   * after sending it. A lost session drops every watch without a call: the
   * next session starts from a full resync.
   */
  watch(seq: number, w: CommandWatch): void {
    this.watched.set(seq, w);
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
    this.lastSentAt = performance.now();
    const n = frame.length;
    this.unsent += n;
    this.ws!.send(frame, { binary: true }, (err) => {
      this.unsent -= n;
      this.wakeDrained();
      done?.(err);
    });
  }

  /**
   * Like sendFrame, for a frame whose bytes the caller gives up until `done`: they may be
   * masked in place (owned-send.ts), so they are garbage afterwards. Saves a copy of every
   * byte and an allocation per frame; the writeback engine's staging buffers go this way.
   */
  sendOwnedFrame(frame: Uint8Array, done: (err?: Error) => void): void {
    if (!this.isOpen) throw new DeviceLostError('no device session');
    this.bytesSent += frame.length;
    this.lastSentAt = performance.now();
    const n = frame.length;
    this.unsent += n;
    sendOwned(this.ws!, frame, this.options.zeroMask === true ? zeroMask : undefined, (err) => {
      this.unsent -= n;
      this.wakeDrained();
      done(err);
    });
  }

  /** Call `fn` for every deviceWrite announcement, as it arrives and before options.onDeviceWrite. */
  observeDeviceWrites(fn: (msg: DeviceWrite) => void): void {
    this.deviceWriteObservers.push(fn);
  }

  /** Send a fence; resolves when the device signals it ok, rejects with DeviceError / DeviceLostError. */
  fence(): Promise<Signaled> {
    const [fence, signaled] = this.expectFence();
    try {
      this.send(this.offers('seen') ? { op: 'fence', fence, seen: this.seenDeviceWrites } : { op: 'fence', fence });
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
    const signaled = new Promise<Signaled>((resolve, reject) => this.fences.set(fence, { resolve, reject, deadline: this.deadline() }));
    this.armWatchdog();
    return [fence, signaled];
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
    const reply = new Promise<T>((resolve, reject) => this.replies.set(seq, { resolve: resolve as (m: DeviceMessage) => void, reject, deadline: this.deadline() }));
    this.armWatchdog();
    return reply;
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
    this.retryTimer = null;
    this.clearTimers();
    this.failPending(new CancelledError('connection closed'));
    this.opened?.reject(new CancelledError('connection closed'));
    this.opened = null;
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
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.options.url, wsClientOptions(this.options));
    } catch (e) {
      // A URL ws cannot use is as permanent as a refusal.
      return this.fail(new DeviceRefusedError('bad_url', (e as Error).message));
    }
    this.ws = ws;
    this.seq = 0;
    this.seenDeviceWrites = 0;
    this.cutReason = null;
    let transportError = '';
    ws.binaryType = 'nodebuffer';
    ws.on('error', (err) => {
      transportError = err.message;
      // Before the first session, connect()'s rejection reports the problem once.
      if (this.sessions > 0) this.options.log?.(`device connection error: ${err.message}`);
    });
    ws.on('open', () => {
      const hello = {
        op: 'hello' as const, min: PROTOCOL_VERSION_MIN, max: PROTOCOL_VERSION_MAX, token: this.options.token,
        name: this.options.name ?? 'vgpu-dirty driver', ...(this.options.role !== undefined ? { role: this.options.role } : {}),
      };
      ws.send(this.encoder.encode(hello), { binary: true });
      const ms = this.options.helloTimeoutMs ?? 10_000;
      this.helloTimer = setTimeout(() => this.cut(ws, `no welcome within ${ms} ms`), ms);
      this.helloTimer.unref();
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return this.protocolFailure(ws, 'text frame from device');
      const msg = decodeDeviceFrame(data);
      if (msg instanceof ProtocolError) return this.protocolFailure(ws, msg.message);
      this.dispatch(msg);
    });
    ws.on('close', (code, reason) => {
      if (this.ws === ws) this.lastProblem = transportError; // ECONNREFUSED says more than its 1006
      this.onClose(ws, code, reason.toString());
    });
  }

  private dispatch(msg: DeviceMessage): void {
    switch (msg.op) {
      case 'welcome':
        if (this.helloTimer) clearTimeout(this.helloTimer);
        this.helloTimer = null;
        this.welcome = msg;
        this.sessions++;
        this.startKeepalive(msg.idleTimeout ?? 0);
        this.failedAttempts = 0;
        this.backoff = this.options.backoffInitialMs ?? 50;
        this.options.onSession?.(msg);
        this.opened?.resolve(msg);
        this.opened = null;
        return;
      case 'signaled': {
        // Everything sent before this fence was applied or rejected, and rejections were
        // answered (in order) before this signal: unanswered watched commands were applied.
        for (const seq of this.watched.keys()) {
          if (seq > msg.seq) break;
          const w = this.watched.get(seq)!;
          this.watched.delete(seq);
          w.applied?.();
        }
        // Fences signal in order: one still pending below this id will never be signalled
        // (its frame was rejected before the device could read it). Never leave it hanging.
        for (const id of this.fences.keys()) {
          if (id >= msg.fence) break;
          const pending = this.fences.get(id)!;
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
        for (const fn of this.deviceWriteObservers) fn(msg);
        this.options.onDeviceWrite?.(msg);
        this.seenDeviceWrites++;
        return;
      case 'error': {
        if (this.welcome === null && PERMANENT_REFUSALS.has(msg.code)) {
          // The close that follows must not lead to another attempt.
          this.failure = new DeviceRefusedError(msg.code, msg.message);
          return;
        }
        const err = new DeviceError(msg.code, msg.message, msg.seq);
        const reply = msg.seq !== undefined ? this.replies.get(msg.seq) : undefined;
        const watch = msg.seq !== undefined ? this.watched.get(msg.seq) : undefined;
        if (reply) {
          this.replies.delete(msg.seq!);
          reply.reject(err);
        } else if (watch) {
          this.watched.delete(msg.seq!);
          watch.failed(err);
        } else {
          this.options.log?.(err.message);
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
    this.clearTimers();
    const why = this.cutReason ?? `device connection closed (${code}${reason ? ` ${reason}` : ''})`;
    this.lastProblem ||= why;
    this.failPending(new DeviceLostError(why));
    this.unsent = 0;
    this.wakeDrained();
    if (this.closing) return;
    if (wasOpen) this.options.onLost?.(why);
    if (this.failure !== null) return this.fail(this.failure);
    if (this.options.reconnect === false) {
      this.opened?.reject(new DeviceLostError(why));
      this.opened = null;
      return;
    }
    if (!wasOpen && ++this.failedAttempts >= this.attemptLimit) {
      return this.giveUp(new ConnectTimeoutError(`no device session at ${this.options.url} after ${this.failedAttempts} attempts (last: ${why})`));
    }
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.options.backoffMaxMs ?? 2000);
    if (this.sessions > 0) this.options.log?.(`${why}; reconnecting in ${delay} ms`);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.closing) this.open();
    }, delay);
    // Only a waiter (connect, ready) makes a reconnect worth keeping the process alive for.
    if (this.opened === null) this.retryTimer.unref();
  }

  /** connect() ran out of time or attempts, or was aborted: stop for good and reject it. */
  private giveUp(err: Error): void {
    this.fail(err);
    const ws = this.ws;
    this.ws = null;
    ws?.terminate();
  }

  /** The connection is finished: nothing reconnects, waiters reject with `err`. */
  private fail(err: Error): void {
    const first = this.failure === null || this.failure === err;
    this.failure = err;
    this.closing = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.clearTimers();
    this.failPending(err instanceof DeviceLostError ? err : new DeviceLostError(err.message));
    if (this.opened === null) this.options.log?.(err.message); // nobody else will report it
    this.opened?.reject(err);
    this.opened = null;
    if (first) this.options.onFailed?.(err);
  }

  /** Cut a socket the device stopped answering on; onClose then reports `why`. */
  private cut(ws: WebSocket, why: string): void {
    if (this.ws !== ws) return;
    this.cutReason = why;
    this.options.log?.(`${why}: dropping the device session`);
    ws.terminate();
  }

  private deadline(): number {
    return performance.now() + (this.options.replyTimeoutMs ?? 30_000);
  }

  /**
   * One timer for everything the device owes: fences are signalled in order and
   * requests were sent in order, so only the oldest of each can be the first overdue.
   */
  private armWatchdog(): void {
    if (this.watchdog !== null) return;
    const first = (m: Map<number, Owed<never>>) => m.values().next().value?.deadline ?? Infinity;
    const next = Math.min(first(this.fences as Map<number, Owed<never>>), first(this.replies as Map<number, Owed<never>>));
    if (next === Infinity) return;
    this.watchdog = setTimeout(() => {
      this.watchdog = null;
      const ws = this.ws;
      if (ws === null) return; // closed meanwhile: everything pending was rejected
      const now = performance.now();
      const fence = this.fences.entries().next().value;
      const reply = this.replies.entries().next().value;
      const ms = this.options.replyTimeoutMs ?? 30_000;
      if (fence !== undefined && fence[1].deadline <= now) this.cut(ws, `fence ${fence[0]} not signalled within ${ms} ms`);
      else if (reply !== undefined && reply[1].deadline <= now) this.cut(ws, `no reply to seq ${reply[0]} within ${ms} ms`);
      else this.armWatchdog();
    }, Math.max(0, next - performance.now()) + 1);
    this.watchdog.unref();
  }

  /**
   * A device with an idleTimeout closes a session in which nothing arrives for that long
   * (docs/protocol.md §9.2): ping when nothing was sent for a third of it.
   */
  private startKeepalive(idleTimeout: number): void {
    if (!(idleTimeout > 0)) return;
    const every = Math.max(1, Math.floor(idleTimeout / 3));
    this.lastSentAt = performance.now();
    this.keepalive = setInterval(() => {
      if (!this.isOpen || performance.now() - this.lastSentAt < every) return;
      try {
        this.send({ op: 'ping' });
      } catch {
        // the session just ended; onClose handles it
      }
    }, every);
    this.keepalive.unref();
  }

  private clearTimers(): void {
    if (this.keepalive) clearInterval(this.keepalive);
    this.keepalive = null;
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = null;
    if (this.helloTimer) clearTimeout(this.helloTimer);
    this.helloTimer = null;
  }

  private failPending(err: Error): void {
    for (const w of this.fences.values()) w.reject(err);
    this.fences.clear();
    for (const w of this.replies.values()) w.reject(err);
    this.replies.clear();
    this.watched.clear();
  }
}
