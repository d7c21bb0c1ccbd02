// The device server: an HTTP server carrying a ws WebSocketServer, one Session per
// connection, and the mock facilities (recording, faults, restart, inspection).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { CloseCode, Encoder, FEATURE_CONTROL, FEATURES } from '../protocol/index.js';
import { Faults } from './faults.js';
import { resolveOptions, type DeviceOptions, type ResolvedOptions } from './options.js';
import { Pacer } from './pacer.js';
import { Recorder, type LogEntry } from './recorder.js';
import { Session, type Host, type SessionView } from './session.js';
import { Memory } from './store.js';

/** How long close()/restart() wait for close handshakes before cutting sockets. */
const CLOSE_GRACE_MS = 500;

export interface Device {
  /** ws://host:port of the listening socket (real port when options.port was 0). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly options: ResolvedOptions;
  /** Scripted faults (see Faults). */
  readonly faults: Faults;
  /** Every received frame, oldest first (empty unless options.record). */
  readonly log: readonly LogEntry[];
  /** Open sessions, in connection order. */
  sessions(): SessionView[];
  session(id: number): SessionView | undefined;
  /** Closes every connection with 1012 and forgets all state; the device keeps listening. */
  restart(): Promise<void>;
  /** Closes every connection with 1001 and stops listening. Idempotent. */
  close(): Promise<void>;
}

/** Starts a device; resolves once it listens. */
export async function startDevice(options: DeviceOptions = {}): Promise<Device> {
  const device = new DeviceServer(resolveOptions(options));
  await device.listen();
  return device;
}

class DeviceServer implements Device, Host {
  readonly memory: Memory;
  readonly faults = new Faults();
  readonly pacer: Pacer;
  readonly recorder: Recorder;
  readonly encoder = new Encoder();
  readonly features: readonly string[];
  private readonly live = new Map<number, Session>();
  private nextId = 1;
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private closing: Promise<void> | undefined;
  host = '';
  port = 0;

  constructor(readonly options: ResolvedOptions) {
    this.memory = new Memory(options.limits);
    this.pacer = new Pacer(options.bandwidth);
    this.recorder = new Recorder(options.record, options.logFile);
    this.features = options.control ? [...FEATURES, FEATURE_CONTROL] : [...FEATURES];
    this.http = createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
      res.end('this is a vgpu-dirty device: connect with a WebSocket client\n');
    });
    this.wss = new WebSocketServer({
      server: this.http,
      perMessageDeflate: false,
      maxPayload: options.limits.maxMessageSize,
      clientTracking: false,
    });
    this.wss.on('connection', (ws) => this.accept(ws));
    this.wss.on('error', (err) => options.log(`server error: ${err.message}`));
    this.http.on('clientError', (err, socket) => {
      options.log(`http client error: ${err.message}`);
      socket.destroy();
    });
  }

  get url(): string {
    return `ws://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  get log(): readonly LogEntry[] {
    return this.recorder.entries;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        this.recorder.close();
        reject(err);
      };
      this.http.once('error', onError);
      this.http.listen(this.options.port, this.options.host, () => {
        this.http.off('error', onError);
        this.http.on('error', (err) => this.options.log(`server error: ${err.message}`));
        const addr = this.http.address() as AddressInfo;
        this.host = this.options.host;
        this.port = addr.port;
        resolve();
      });
    });
  }

  private accept(ws: WebSocket): void {
    if (this.closing !== undefined) {
      ws.close(CloseCode.goingAway, 'device shutting down');
      return;
    }
    const session = new Session(this.nextId++, ws, this);
    this.live.set(session.id, session);
    this.options.log(`session ${session.id}: connected`);
  }

  // ---- Host ----

  findSession(id: number): Session | undefined {
    return this.live.get(id);
  }
  sessionCount(): number {
    return this.live.size;
  }
  ended(session: Session): void {
    this.live.delete(session.id);
  }

  // ---- Device ----

  sessions(): SessionView[] {
    return [...this.live.values()];
  }
  session(id: number): SessionView | undefined {
    return this.live.get(id);
  }

  async restart(): Promise<void> {
    this.options.log('restart: dropping all sessions and state');
    await this.endAll(CloseCode.serviceRestart, 'device restart');
    this.memory.reset();
    this.faults.clear();
    this.pacer.reset();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.faults.clear();
      await this.endAll(CloseCode.goingAway, 'device shutting down');
      await new Promise<void>((resolve) => {
        this.wss.close(() => resolve());
      });
      await new Promise<void>((resolve) => {
        this.http.close(() => resolve());
        this.http.closeAllConnections();
      });
      this.recorder.close();
      this.options.log('closed');
    })();
    return this.closing;
  }

  /** Closes every session with a close frame; cuts those that do not finish in time. */
  private async endAll(code: CloseCode, reason: string): Promise<void> {
    const sessions = [...this.live.values()];
    for (const s of sessions) s.shutdown(code, reason);
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)));
    await Promise.race([Promise.all(sessions.map((s) => s.closed)), grace]);
    clearTimeout(timer);
    for (const s of sessions) s.kill();
  }
}
