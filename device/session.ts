// One WebSocket connection: handshake, seq checking, the ordered command queue, the ordered
// reply outbox and flow control.
//
// Invariants
// - Commands are applied strictly in arrival order, one at a time; each is applied whole or
//   rejected whole (the store validates before it writes).
// - Replies leave in the order they were produced. A fence's signal may be held back (fence
//   latency, delay faults); replies produced after it wait behind it, so fences and every
//   reply stay ordered. Only pong bypasses the outbox (it answers on receipt).
// - Bounded memory: the socket is paused (TCP pushes back on the driver) while unapplied
//   command bytes or unsent message bytes exceed highWaterMark, and resumed when both together
//   are at most half of it; every frame and message is charged ITEM_OVERHEAD_BYTES on top of
//   its size. Every reply counts, pong and errors included, so a client that sends and never
//   reads stops being read. The pump also stops applying while unsent bytes exceed the mark.
// - Per-object state dies with the object: destroyBo forgets the BO's unseen device writes.
import {
  CLOSE_FOR,
  CloseCode,
  decodeFrame,
  parseDriverMessage,
  ProtocolError,
  type Codec,
  type Command,
  type DataRange,
  type Decoded,
  type DeviceMessage,
  type Encoder,
  type ErrorCode,
  type Feature,
  type GpuWrite,
  type Ping,
  type Role,
  type Signaled,
} from '../protocol/index.js';
import type { Faults } from './faults.js';
import { admit } from './handshake.js';
import type { ResolvedOptions } from './options.js';
import type { Pacer } from './pacer.js';
import type { FrameReclaimer } from './reclaim.js';
import type { Recorder } from './recorder.js';
import { Namespace, type Memory, type Surface } from './store.js';
import { UnseenWrites } from './unseen.js';
import type { DeviceSocket } from './websocket/socket.js';

/** What a session needs from its device. */
export interface Host {
  readonly options: ResolvedOptions;
  readonly memory: Memory;
  readonly faults: Faults;
  readonly pacer: Pacer;
  readonly recorder: Recorder;
  readonly encoder: Encoder;
  /** Told of every received frame's size (frees received frames promptly). */
  readonly reclaimer: FrameReclaimer;
  /** Announced in welcome. */
  readonly features: readonly string[];
  /** Ops this device answers (optional ops only with their feature). */
  readonly ops: ReadonlySet<string>;
  /** Codecs of writeSpans this device decodes ('none' with writeSpans, others with their feature). */
  readonly codecs: ReadonlySet<Codec>;
  offers(feature: Feature): boolean;
  findSession(id: number): Session | undefined;
  sessionCount(): number;
  /** The session ended; forget it. */
  ended(session: Session): void;
}

export interface Counters {
  /** Commands applied successfully (fences excluded). */
  commands: number;
  /** Commands rejected (bad message, device error, injected fault). */
  failed: number;
  fences: number;
  bytesWritten: number;
  bytesRead: number;
  /** Times the socket was paused for backpressure, and the largest backlog seen. */
  pauses: number;
  maxBacklog: number;
  /** Most messages waiting for the socket at once (a client that does not read piles them up). */
  maxUnsent: number;
}

/** The in-process view of a session (device.session(id)). */
export interface SessionView {
  readonly id: number;
  readonly name: string;
  readonly role: Role;
  readonly counters: Readonly<Counters>;
  boIds(): number[];
  /** Copy of a BO's device bytes, or undefined. */
  bo(id: number): Uint8Array | undefined;
  surfaces(): Surface[];
  /**
   * Change the BO as the GPU would and announce it to the client; throws ProtocolError (also
   * `limit` when the client is not reading, so announcements cannot pile up).
   */
  gpuWrite(bo: number, ranges: DataRange[]): void;
}

type Queued = Exclude<Command, Ping> | ProtocolError;

/**
 * Bytes charged per queued command and per unsent message on top of their own bytes, so that
 * many tiny frames stay bounded too (about what one costs in the JS heap).
 */
const ITEM_OVERHEAD_BYTES = 256;
/** Commands applied per event-loop turn before yielding (bounded work per tick). */
const BATCH = 64;
/** How long a closed session's socket waits for the client's close frame before it is cut. */
const CLOSE_HANDSHAKE_MS = 1000;

/** What signalling a fence needs from the frame that carries it. */
type Fenceable = { seq: number; fence?: number; seen?: number };

export class Session implements SessionView {
  name = '';
  role: Role = 'driver';
  private readonly unseen = new UnseenWrites();
  readonly counters: Counters = { commands: 0, failed: 0, fences: 0, bytesWritten: 0, bytesRead: 0, pauses: 0, maxBacklog: 0, maxUnsent: 0 };
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void>;

  private state: 'hello' | 'open' | 'ended' = 'hello';
  private readonly ns: Namespace;
  /** -1 before the first command: the first seq may be 0. */
  private lastSeq = -1;
  /** performance.now() of the last frame received or reply written to the socket (idle timeout). */
  private lastActivity = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  // Command queue: items before `head` are consumed; compacted now and then. Each item holds
  // its received message's buffer (commands are views into it) until `release` gives it back.
  private queue: ({ msg: Queued; bytes: number; release: () => void } | undefined)[] = [];
  private head = 0;
  private backlog = 0;
  private running = false;
  private paused = false;
  // Ordered outbox for replies that must wait (delayed fences and everything behind them).
  private readonly outbox: { bytes: Uint8Array; at: number }[] = [];
  private outboxBytes = 0;
  /** Messages handed to the socket whose send callback has not run (each costs memory beyond its bytes). */
  private unsentMessages = 0;
  private outboxTimer: NodeJS.Timeout | undefined;
  private drainWaiter: (() => void) | undefined;
  private helloTimer: NodeJS.Timeout | undefined;
  /** First failure since the previous fence, and how many there were. */
  private failure: { errors: number; code: ErrorCode; message: string; errSeq: number | undefined } | null = null;

  constructor(
    readonly id: number,
    private readonly ws: DeviceSocket,
    private readonly host: Host,
  ) {
    this.ns = new Namespace(host.memory);
    this.closed = new Promise((resolve) => ws.once('close', () => resolve()));
    ws.on('message', (data, isBinary, release) => this.onMessage(data, isBinary, release));
    ws.on('error', (err) => this.log(`socket error: ${err.message}`));
    ws.on('close', (code, reason) => {
      this.log(`closed ${code}${reason.length > 0 ? ` ${reason}` : ''}`);
      this.end();
    });
    const t = host.options.helloTimeout;
    this.helloTimer = setTimeout(() => this.fatal('protocol', `no hello within ${t} ms`), t);
  }

  // ---- SessionView ----

  boIds(): number[] {
    return this.ns.boIds();
  }
  bo(id: number): Uint8Array | undefined {
    return this.ns.snapshot(id);
  }
  surfaces(): Surface[] {
    return this.ns.surfaceList();
  }
  gpuWrite(bo: number, ranges: DataRange[]): void {
    if (!this.host.offers('gpuWrite')) throw new ProtocolError('unknown_op', 'this device does not offer gpuWrite');
    this.deviceWrite(bo, ranges, undefined);
  }

  // ---- lifecycle ----

  /** Closes with a close frame (device shutdown, restart, fatal protocol error); reason is `code: message`. */
  shutdown(code: CloseCode, reason: string): void {
    if (this.state === 'ended') return;
    this.end();
    closeSocket(this.ws, code, reason);
  }

  /** Cuts the connection without a close frame (drop fault, stragglers at shutdown). */
  kill(): void {
    this.end();
    this.ws.terminate();
  }

  /** Frees everything once; later input is ignored. */
  private end(): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    clearTimeout(this.helloTimer);
    clearTimeout(this.outboxTimer);
    clearTimeout(this.idleTimer);
    this.ns.release();
    for (let i = this.head; i < this.queue.length; i++) this.queue[i]?.release();
    this.queue = [];
    this.head = 0;
    this.backlog = 0;
    this.drainWaiter?.();
    this.host.ended(this);
  }

  private fatal(code: ErrorCode, message: string, close: CloseCode = CLOSE_FOR[code] ?? CloseCode.protocolError): void {
    if (this.state === 'ended') return;
    this.log(`${code}: ${message}`);
    this.sendNow(this.host.encoder.encode({ op: 'error', code, message }));
    this.shutdown(close, `${code}: ${message}`);
  }

  private log(line: string): void {
    this.host.options.log(`session ${this.id}${this.name ? ` (${this.name})` : ''}: ${line}`);
  }

  // ---- input ----

  /**
   * A received message. `release` gives its buffer back to the socket's pool: called here unless
   * the message is queued (commands hold views into it), then once it is applied or dropped.
   */
  private onMessage(frame: Buffer, isBinary: boolean, release: () => void): void {
    const command = this.receive(frame, isBinary);
    if (command === undefined) return release();
    this.enqueue(command, frame.length + ITEM_OVERHEAD_BYTES, release);
  }

  /** Handles a received message; returns the command to queue, if it is one. */
  private receive(frame: Buffer, isBinary: boolean): Queued | void {
    if (this.state === 'ended') return;
    if (!isBinary) return this.fatal('text_frame', 'text frames are not part of the protocol; send binary frames');
    const { recorder, faults } = this.host;
    if (recorder.active) recorder.record(this.id, frame);
    if (faults.onReceive(this.id)) {
      this.log('dropping connection (fault)');
      return this.kill();
    }
    this.lastActivity = performance.now();
    this.host.reclaimer.onReceived(frame.length);
    const decoded = decodeFrame(frame);
    if (decoded instanceof ProtocolError) return this.fatal('malformed', decoded.message);
    if (this.state === 'hello') return this.onHello(decoded);
    const msg = parseDriverMessage(decoded.value, decoded.problem, this.host.ops);
    if (!(msg instanceof ProtocolError) && msg.op === 'hello') return this.fatal('protocol', 'second hello');
    if (msg instanceof ProtocolError && msg.op === 'hello') return this.fatal('protocol', 'second hello');
    const seq = msg.seq;
    // A frame whose seq cannot be read is outside the sequence: answered, never advancing it.
    if (seq !== undefined) {
      if (seq <= this.lastSeq) return this.fatal('bad_seq', `seq ${seq} after ${this.lastSeq}: seq must increase`);
      this.lastSeq = seq;
    }
    if (!(msg instanceof ProtocolError) && msg.op === 'ping') {
      return this.sendNow(this.host.encoder.encode({ op: 'pong', seq: msg.seq }));
    }
    return msg;
  }

  private onHello(first: Decoded): void {
    clearTimeout(this.helloTimer);
    const { options, features } = this.host;
    const a = admit(first, options);
    if ('code' in a) return this.fatal(a.code, a.message);
    this.role = a.role;
    this.name = a.name;
    this.state = 'open';
    this.log(`hello: version ${a.version}, role ${this.role}`);
    this.emit({
      op: 'welcome', version: a.version, session: this.id, pageSize: options.pageSize, features: [...features],
      ...options.limits, idleTimeout: options.idleTimeout,
    });
    if (options.idleTimeout > 0) this.armIdle(options.idleTimeout);
  }

  /**
   * Idle: no progress for idleTimeout ms — no frame arrived and no reply was taken by the
   * socket — while the device holds back nothing itself (a stall, a delayed signal, commands
   * still being applied). So a client that neither sends nor reads is closed, also one the
   * device stopped reading for backpressure; one whose replies drain is not. One timer per
   * session, re-armed to the next possible expiry.
   */
  private armIdle(ms: number): void {
    this.idleTimer = setTimeout(() => {
      // Decide after the I/O this loop turn has pending: a timer that fires late after a busy
      // stretch must not mistake frames and writes not processed yet for silence.
      setImmediate(() => this.checkIdle());
    }, Math.max(1, ms));
  }

  private checkIdle(): void {
    if (this.state !== 'open') return;
    const { idleTimeout } = this.host.options;
    const owed = this.host.faults.stalled(this.id) || this.outboxTimer !== undefined || (this.running && this.drainWaiter === undefined);
    const quiet = performance.now() - this.lastActivity;
    if (owed || quiet < idleTimeout) return this.armIdle(owed ? idleTimeout : idleTimeout - quiet);
    this.fatal('idle', `no frame received or reply read for ${idleTimeout} ms (send ping to stay connected)`);
  }

  private enqueue(msg: Queued, bytes: number, release: () => void): void {
    // Nothing queued or being applied, and nothing that would hold this command back: apply it
    // now (a 1-page sync's frame), the same as the pump would, without the queue's round trip.
    if (!this.running && this.head === this.queue.length && this.appliesAtOnce(msg, bytes - ITEM_OVERHEAD_BYTES)) {
      try {
        return this.applyGuarded(msg);
      } finally {
        release();
      }
    }
    this.queue.push({ msg, bytes, release });
    this.backlog += bytes;
    if (this.backlog > this.counters.maxBacklog) this.counters.maxBacklog = this.backlog;
    this.updateFlow();
    if (!this.running) void this.pump();
  }

  /**
   * Pauses reading while unapplied commands or unsent replies exceed the high-water mark;
   * resumes when both together are at most half of it. Called whenever either changes.
   */
  private updateFlow(): void {
    if (this.state === 'ended') return;
    const hwm = this.host.options.highWaterMark;
    const outbound = this.outboundBytes();
    if (this.drainWaiter !== undefined && outbound <= hwm / 2) this.drainWaiter();
    if (!this.paused && (this.backlog > hwm || outbound > hwm)) {
      this.paused = true;
      this.counters.pauses++;
      this.ws.pause();
    } else if (this.paused && this.backlog + outbound <= hwm / 2) {
      this.paused = false;
      this.ws.resume();
    }
  }

  // ---- applying ----

  /**
   * Whether the pump would apply `msg` at once were it queued now: the session is open, not
   * stalled, not over the high-water mark, and no DMA pacing applies to it (a paced command
   * takes the queue, which books and waits).
   */
  private appliesAtOnce(msg: Queued, frameBytes: number): boolean {
    const { faults, pacer, options } = this.host;
    return this.state === 'open' && !faults.stalled(this.id) && this.outboundBytes() <= options.highWaterMark &&
      (!pacer.paces || dmaBytes(msg, frameBytes) === 0);
  }

  /** Applies one command outside the pump; an internal error ends the session as in the pump. */
  private applyGuarded(msg: Queued): void {
    try {
      this.apply(msg);
    } catch (e) {
      this.internalError(e);
    }
  }

  private internalError(e: unknown): void {
    this.log(`internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    this.shutdown(CloseCode.internalError, 'internal error');
  }

  /** Applies queued commands in order; runs until the queue is empty or the session ends. */
  private async pump(): Promise<void> {
    this.running = true;
    const { faults, pacer, options } = this.host;
    try {
      let applied = 0;
      while (this.state === 'open' && this.head < this.queue.length) {
        if (faults.stalled(this.id)) {
          await faults.released();
          continue;
        }
        if (this.outboundBytes() > options.highWaterMark) {
          await new Promise<void>((resolve) => (this.drainWaiter = resolve));
          this.drainWaiter = undefined;
          continue;
        }
        const item = this.queue[this.head]!;
        this.queue[this.head++] = undefined;
        if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
        // Out of the queue, the item's buffer is given back here whatever happens.
        try {
          const wait = pacer.reserve(dmaBytes(item.msg, item.bytes - ITEM_OVERHEAD_BYTES));
          if (wait > 0) await sleep(wait);
          if (this.state !== 'open') break;
          this.apply(item.msg);
        } finally {
          item.release();
        }
        this.backlog -= item.bytes;
        this.updateFlow();
        if (++applied % BATCH === 0) await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (e) {
      this.internalError(e);
    } finally {
      this.running = false;
    }
  }

  private apply(msg: Queued): void {
    if (msg instanceof ProtocolError) {
      this.reject(msg);
      // A rejected frame still signals the fence it carries when seq and fence were readable
      // (docs/protocol.md §5): a driver waiting for it must not wait forever.
      if (msg.seq !== undefined && msg.fence !== undefined && this.carriesFence(msg.op)) this.signal({ seq: msg.seq, fence: msg.fence });
      return;
    }
    if (msg.op === 'fence') return this.signal(this.withSeen(msg));
    const injected = this.host.faults.onCommand(this.id);
    if (injected !== undefined) {
      this.reject(new ProtocolError('injected', injected, msg.seq));
    } else {
      try {
        this.execute(msg);
        this.counters.commands++;
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
        this.reject(e);
      }
    }
    // A DMA frame may carry its own fence: signalled right after it, applied or rejected,
    // exactly as a separate fence following it would be (one frame per sync).
    if ((msg.op === 'write' || msg.op === 'writeSurface' || msg.op === 'writeSpans') && msg.fence !== undefined && this.carriesFence(msg.op)) {
      this.signal(this.withSeen({ seq: msg.seq, fence: msg.fence, seen: msg.seen }));
    }
  }

  /** Whether a fence on this op is honoured: always on `fence`, on DMA frames with fencedWrite. */
  private carriesFence(op: string | undefined): boolean {
    return op === 'fence' || (isDma(op) && this.host.offers('fencedWrite'));
  }

  /** `seen` counts only on a device that offers it; elsewhere it is an unknown key. */
  private withSeen<T extends Fenceable>(msg: T): T {
    return msg.seen === undefined || this.host.offers('seen') ? msg : { ...msg, seen: undefined };
  }

  private execute(msg: Exclude<Queued, ProtocolError | { op: 'fence' }>): void {
    const { ns, counters } = this;
    const { seq } = msg;
    switch (msg.op) {
      case 'defineBo':
        return ns.defineBo(msg.bo, msg.size, seq);
      case 'destroyBo':
        ns.destroyBo(msg.bo, seq);
        return this.unseen.forget(msg.bo);
      case 'defineSurface':
        return ns.defineSurface(msg);
      case 'destroySurface':
        return ns.destroySurface(msg.sid, seq);
      case 'write': {
        const { seen } = this.withSeen(msg);
        counters.bytesWritten += this.unseen.applyKeeping(msg.bo, ns.bytesOf(msg.bo), seen, () => ns.write(msg.bo, msg.ranges, seq));
        return;
      }
      case 'writeSpans': {
        const { seen } = this.withSeen(msg);
        const { codecs } = this.host;
        counters.bytesWritten += this.unseen.applyKeeping(msg.bo, ns.bytesOf(msg.bo), seen, () => ns.writeSpans(msg.bo, msg.spans, msg.data, msg.codec ?? 'none', codecs, seq));
        return;
      }
      case 'writeSurface': {
        const { seen } = this.withSeen(msg);
        const bo = ns.surfaceBo(msg.sid) ?? -1;
        counters.bytesWritten += this.unseen.applyKeeping(bo, ns.bytesOf(bo), seen, () => ns.writeBoxes(msg.sid, msg.boxes, seq));
        return;
      }
      case 'readback': {
        const ranges = ns.read(msg.bo, msg.ranges, seq);
        for (const [, data] of ranges) counters.bytesRead += data.length;
        return this.emit({ op: 'readbackData', seq, bo: msg.bo, ranges });
      }
      case 'gpuWrite':
        return this.gpuWriteFrom(msg);
      case 'digest': {
        const { pageSize } = this.host.options;
        const hashes = ns.digest(msg.bo, msg.offset, msg.length, pageSize, seq);
        return this.emit({ op: 'digestData', seq, bo: msg.bo, offset: msg.offset, pageSize, hashes });
      }
      case 'stats': {
        const { memory } = this.host;
        return this.emit({
          op: 'statsData', seq, bos: ns.boCount, surfaces: ns.surfaceCount, bytes: ns.bytes,
          commands: counters.commands, failed: counters.failed, fences: counters.fences,
          bytesWritten: counters.bytesWritten, bytesRead: counters.bytesRead,
          sessions: this.host.sessionCount(), deviceBos: memory.bos, deviceBytes: memory.bytes,
        });
      }
    }
  }

  /** gpuWrite from the wire: own BO, or (control role) another session's BO. */
  private gpuWriteFrom(msg: GpuWrite): void {
    if (msg.session === undefined || msg.session === this.id) return this.deviceWrite(msg.bo, msg.ranges, msg.seq);
    if (this.role !== 'control') {
      throw new ProtocolError('forbidden', 'only control connections may write another session\'s BO', msg.seq);
    }
    const target = this.host.findSession(msg.session);
    if (target === undefined) throw new ProtocolError('unknown_bo', `no session ${msg.session}`, msg.seq);
    target.deviceWrite(msg.bo, msg.ranges, msg.seq);
  }

  /** Applies a device-side write to this session's BO and announces it (ranges are encoded now). */
  private deviceWrite(bo: number, ranges: DataRange[], seq: number | undefined): void {
    if (this.state !== 'open') throw new ProtocolError('unknown_bo', `session ${this.id} is not open`, seq);
    // The announcement is a reply like any other: refuse rather than buffer for a client that
    // does not read (a control session could otherwise fill this session's outbox without bound).
    if (this.outboundBytes() > this.host.options.highWaterMark) {
      throw new ProtocolError('limit', `session ${this.id} is not reading its messages (over the high-water mark)`, seq);
    }
    this.counters.bytesWritten += this.ns.write(bo, ranges, seq);
    this.emit({ op: 'deviceWrite', bo, ranges });
    this.unseen.announce(bo, ranges);
  }

  private reject(err: ProtocolError): void {
    this.counters.failed++;
    if (this.failure === null) this.failure = { errors: 1, code: err.code, message: err.message, errSeq: err.seq };
    else this.failure.errors++;
    this.emit({ op: 'error', code: err.code, message: err.message, seq: err.seq });
  }

  private signal(f: Fenceable & { fence: number }): void {
    this.counters.fences++;
    if (f.seen !== undefined) this.unseen.acknowledge(f.seen);
    const failure = this.failure;
    this.failure = null;
    const { encoder, options, faults } = this.host;
    const delay = options.fenceLatency + faults.fenceDelay(this.id);
    if (failure === null) return this.emitFrame(encoder.signaledOk(f.seq, f.fence), delay);
    const reply: Signaled = { op: 'signaled', seq: f.seq, fence: f.fence, ok: false, ...failure };
    this.emit(reply, delay);
  }

  // ---- output ----

  /** Encodes now (so views into BOs or frames are copied now) and sends in order after `delay` ms. */
  private emit(msg: DeviceMessage, delay = 0): void {
    this.emitFrame(this.host.encoder.encode(msg), delay);
  }

  /** Sends an encoded message in order after `delay` ms. */
  private emitFrame(bytes: Uint8Array, delay = 0): void {
    if (delay <= 0 && this.outbox.length === 0) return this.sendNow(bytes);
    this.outbox.push({ bytes, at: performance.now() + delay });
    this.outboxBytes += bytes.length;
    this.flushOutbox();
  }

  private flushOutbox(): void {
    if (this.outboxTimer !== undefined || this.state === 'ended') return;
    while (this.outbox.length > 0) {
      const wait = this.outbox[0]!.at - performance.now();
      if (wait > 0) {
        this.outboxTimer = setTimeout(() => {
          this.outboxTimer = undefined;
          this.flushOutbox();
        }, wait);
        return;
      }
      const { bytes } = this.outbox.shift()!;
      this.outboxBytes -= bytes.length;
      this.sendNow(bytes);
    }
  }

  private sendNow(bytes: Uint8Array): void {
    if (++this.unsentMessages > this.counters.maxUnsent) this.counters.maxUnsent = this.unsentMessages;
    this.ws.send(bytes, (err) => {
      this.unsentMessages--;
      if (err !== undefined && err !== null && this.state !== 'ended') this.log(`send failed: ${err.message}`);
      this.lastActivity = performance.now();
      this.updateFlow();
    });
    this.updateFlow();
  }

  /**
   * Memory held for the client: unsent bytes plus a per-message charge, because a queued write
   * costs far more than its bytes (a 14-byte pong holds a write request, a callback, a buffer);
   * counting bytes alone let a ping flood hold hundreds of MiB under an 8 MiB mark.
   */
  private outboundBytes(): number {
    return this.ws.bufferedAmount + this.outboxBytes + (this.unsentMessages + this.outbox.length) * ITEM_OVERHEAD_BYTES;
  }
}

/** The ops that carry guest bytes to the device (and may carry a fence with fencedWrite). */
function isDma(op: string | undefined): op is 'write' | 'writeSurface' | 'writeSpans' {
  return op === 'write' || op === 'writeSurface' || op === 'writeSpans';
}

/** Bytes the emulated DMA engine moves for a command (wire bytes: a compressed frame moves fewer). */
function dmaBytes(msg: Queued, frameBytes: number): number {
  if (msg instanceof ProtocolError) return 0;
  switch (msg.op) {
    case 'write':
    case 'writeSurface':
    case 'writeSpans':
    case 'gpuWrite':
      return frameBytes;
    case 'readback':
      return msg.ranges.reduce((sum, [, length]) => sum + length, 0);
    default:
      return 0;
  }
}

/**
 * Starts the close handshake (the socket cuts the reason to what a close frame holds). A client
 * that never answers the close frame would hold the socket for the WebSocket layer's own 30 s
 * close timeout; the session is over, so the socket goes after a short grace.
 */
export function closeSocket(ws: DeviceSocket, code: CloseCode, reason: string): void {
  ws.close(code, reason);
  const cut = setTimeout(() => ws.terminate(), CLOSE_HANDSHAKE_MS);
  cut.unref();
  ws.once('close', () => clearTimeout(cut));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
