// A protocol client for probing a device: sends encoded or raw frames, collects every device
// message in arrival order, and bounds every wait. It trusts nothing the device sends: a frame
// that does not validate is kept as a problem and reported when read, never thrown from an
// event handler.
import WebSocket from 'ws';
import {
  decodeDeviceFrame,
  Encoder,
  ProtocolError,
  type DeviceMessage,
  type Hello,
  type Message,
  type Signaled,
  type Welcome,
} from '../../protocol/index.js';

export const DEFAULT_WAIT_MS = 5000;

export interface Closed {
  code: number;
  reason: string;
}

/** A device frame that did not validate, kept in order with the valid ones. */
interface Invalid {
  op: '<invalid>';
  problem: string;
}

export class WireClient {
  readonly received: (DeviceMessage | Invalid)[] = [];
  readonly closed: Promise<Closed>;
  closedWith: Closed | undefined;
  welcome: Welcome | undefined;
  /** Last seq used by cmd(). */
  seq = 0;
  private read = 0;
  private wake: (() => void) | undefined;
  private readonly encoder = new Encoder();

  private constructor(readonly ws: WebSocket, private readonly waitMs: number) {
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => {
        this.closedWith = { code, reason: reason.toString() };
        resolve(this.closedWith);
        this.wake?.();
      }),
    );
    ws.on('error', () => {}); // the close carries the outcome
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const msg = isBinary ? decodeDeviceFrame(data) : new ProtocolError('bad_message', 'a text frame');
      this.received.push(msg instanceof ProtocolError ? { op: '<invalid>', problem: msg.message } : msg);
      this.wake?.();
    });
  }

  /** Opens a WebSocket to the device; nothing is sent. */
  static async open(url: string, waitMs = DEFAULT_WAIT_MS): Promise<WireClient> {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024, handshakeTimeout: waitMs });
    ws.binaryType = 'nodebuffer';
    const opened = new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode} instead of a WebSocket upgrade`)));
    });
    // Register the close listener before any event can fire.
    const c = new WireClient(ws, waitMs);
    await opened;
    return c;
  }

  /** Opens a connection and completes the handshake; `hello` fields override min 1, max 1. */
  static async session(url: string, hello: Partial<Hello> = {}, waitMs = DEFAULT_WAIT_MS): Promise<WireClient> {
    const c = await WireClient.open(url, waitMs);
    c.send({ op: 'hello', min: 1, max: 1, ...hello });
    const first = await c.next();
    if (first.op !== 'welcome') {
      c.terminate();
      throw new Error(`hello answered with ${show(first)}${c.closedWith ? `, closed ${c.closedWith.code} ${c.closedWith.reason}` : ''}`);
    }
    c.welcome = first;
    return c;
  }

  get isClosed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Bytes handed to the socket that it has not written yet (the device is not reading). */
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /** Sends any value as one MessagePack frame (valid or not). */
  send(value: object): void {
    this.sendRaw(this.encoder.encode(value as Message));
  }

  /** Sends bytes as one binary message, or a string as one text message. */
  sendRaw(frame: Uint8Array | string, done?: () => void): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(frame, { binary: typeof frame !== 'string' }, () => done?.());
  }

  /** Sends a command with the next seq; returns that seq. */
  cmd(msg: Record<string, unknown> & { op: string }): number {
    this.seq++;
    this.send({ ...msg, seq: this.seq });
    return this.seq;
  }

  /** The next device message in arrival order; throws on timeout, close, or an invalid frame. */
  async next(waitMs = this.waitMs): Promise<DeviceMessage> {
    const deadline = performance.now() + waitMs;
    while (this.read >= this.received.length) {
      if (this.closedWith !== undefined) {
        throw new Error(`connection closed (${this.closedWith.code}${this.closedWith.reason ? ` '${this.closedWith.reason}'` : ''}) while waiting for a message`);
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no message from the device within ${waitMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    const m = this.received[this.read++]!;
    // Reading from a full buffer never waits; yield now and then so that a device in the same
    // process (tests) keeps running while a long backlog of replies is read.
    if (this.read % 1024 === 0) await new Promise((resolve) => setImmediate(resolve));
    if (m.op === '<invalid>') throw new Error(`the device sent an invalid frame: ${m.problem}`);
    return m;
  }

  /** The next message, which must have this op (and this seq when given). */
  async expect<Op extends DeviceMessage['op']>(op: Op, seq?: number): Promise<Extract<DeviceMessage, { op: Op }>> {
    const m = await this.next();
    if (m.op !== op || (seq !== undefined && (m as { seq?: number }).seq !== seq)) {
      throw new Error(`expected ${op}${seq !== undefined ? ` for seq ${seq}` : ''}, got ${show(m)}`);
    }
    return m as Extract<DeviceMessage, { op: Op }>;
  }

  /** Sends a fence and returns its signal, which must be the next message. */
  async fence(value = this.seq + 1, extra: Record<string, unknown> = {}): Promise<Signaled> {
    const seq = this.cmd({ op: 'fence', fence: value, ...extra });
    const s = await this.expect('signaled', seq);
    if (s.fence !== value) throw new Error(`signal for seq ${seq} carries fence ${s.fence}, expected ${value}`);
    return s;
  }

  /** Resolves with the close, failing after the wait bound. */
  async waitClosed(waitMs = this.waitMs): Promise<Closed> {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`the device did not close the connection within ${waitMs} ms`)), waitMs)));
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(t);
    }
  }

  /** Messages received but not read yet. */
  unread(): (DeviceMessage | Invalid)[] {
    return this.received.slice(this.read);
  }

  pauseReading(): void {
    this.ws.pause();
  }

  resumeReading(): void {
    this.ws.resume();
  }

  /** Closes with 1000 and waits (bounded) for the close handshake. */
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    try {
      await this.waitClosed(1000);
    } catch {
      this.terminate();
    }
  }

  /** Cuts the connection at once. */
  terminate(): void {
    this.ws.terminate();
  }
}

/** A device message as short JSON for reports: bins as hex, long ones cut. */
export function show(v: unknown): string {
  const text = JSON.stringify(v, (_k, x: unknown) => {
    if (x instanceof Uint8Array) return binText(x);
    if (typeof x === 'object' && x !== null && (x as { type?: unknown }).type === 'Buffer' && Array.isArray((x as { data?: unknown }).data)) {
      return binText(Uint8Array.from((x as { data: number[] }).data));
    }
    return x;
  });
  return text === undefined ? String(v) : text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

function binText(b: Uint8Array): string {
  const hex = Buffer.from(b.subarray(0, 16)).toString('hex');
  return `bin(${b.length}:${hex}${b.length > 16 ? '…' : ''})`;
}
