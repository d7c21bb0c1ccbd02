// Minimal protocol client for tests: sends raw or encoded frames, collects every device
// message in arrival order, and times out instead of hanging.
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

const TIMEOUT_MS = 5000;

export interface Closed {
  code: number;
  reason: string;
}

export class TestClient {
  readonly received: DeviceMessage[] = [];
  readonly closed: Promise<Closed>;
  welcome: Welcome | undefined;
  /** Last seq used by cmd(). */
  seq = 0;
  private read = 0;
  private wake: (() => void) | undefined;
  private readonly encoder = new Encoder();

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('error', () => {}); // close carries the outcome
    ws.on('message', (data: Buffer) => {
      const msg = decodeDeviceFrame(data);
      if (msg instanceof ProtocolError) throw msg;
      this.received.push(msg);
      this.wake?.();
    });
    this.closed.then(() => this.wake?.());
  }

  /** Connects; with `hello` (default {}), performs the handshake and stores the welcome. */
  static async connect(url: string, hello: Partial<Hello> | false = {}): Promise<TestClient> {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const c = new TestClient(ws);
    if (hello !== false) {
      c.send({ op: 'hello', min: 1, max: 1, ...hello });
      c.welcome = (await c.expect('welcome')) as Welcome;
    }
    return c;
  }

  /** Sends any value as one MessagePack frame (also invalid messages). */
  send(value: object): void {
    this.ws.send(this.encoder.encode(value as Message));
  }

  /** Sends a command with the next seq; returns that seq. */
  cmd(msg: Record<string, unknown> & { op: string }): number {
    this.seq++;
    this.send({ ...msg, seq: this.seq });
    return this.seq;
  }

  /** The next device message in arrival order. */
  async next(): Promise<DeviceMessage> {
    const deadline = Date.now() + TIMEOUT_MS;
    while (this.read >= this.received.length) {
      const state = this.ws.readyState;
      if (state === WebSocket.CLOSED) throw new Error(`connection closed while waiting (got ${this.read} messages)`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a device message (got ${this.read})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.received[this.read++]!;
  }

  /** The next message, which must have this op. */
  async expect<Op extends DeviceMessage['op']>(op: Op): Promise<Extract<DeviceMessage, { op: Op }>> {
    const m = await this.next();
    if (m.op !== op) throw new Error(`expected ${op}, got ${JSON.stringify(m, binSafe)}`);
    return m as Extract<DeviceMessage, { op: Op }>;
  }

  /** Sends a fence and returns its signal (the next message must be it). */
  async fence(value = this.seq + 1): Promise<Signaled> {
    const seq = this.cmd({ op: 'fence', fence: value });
    const s = await this.expect('signaled');
    if (s.seq !== seq) throw new Error(`signal for seq ${s.seq}, expected ${seq}`);
    return s;
  }

  /** Skips messages up to the next fence signal. */
  async waitSignal(): Promise<Signaled> {
    for (;;) {
      const m = await this.next();
      if (m.op === 'signaled') return m;
    }
  }

  /** Resolves with the close, failing after the timeout. */
  async waitClosed(): Promise<Closed> {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error('not closed in time')), TIMEOUT_MS)));
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(t);
    }
  }

  close(): Promise<Closed> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close(1000);
    return this.waitClosed();
  }
}

function binSafe(_key: string, v: unknown): unknown {
  return v instanceof Uint8Array || (typeof v === 'object' && v !== null && (v as { type?: string }).type === 'Buffer')
    ? `bin(${(v as Uint8Array).length ?? '?'})`
    : v;
}
