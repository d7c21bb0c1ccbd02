// The device server: an HTTP server carrying WebSocket connections (the device's own endpoint,
// or ws's server: DeviceOptions.websocket), one Session per connection, and the mock facilities
// (recording, faults, restart, inspection).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloseCode, CODECS, COMMAND_OPS, Encoder, FEATURE_CONTROL, OP_FEATURE, type Codec, type Feature } from '../protocol/index.js';
import { Faults } from './faults.js';
import { resolveOptions, type DeviceOptions, type ResolvedOptions } from './options.js';
import { Pacer } from './pacer.js';
import { FrameReclaimer } from './reclaim.js';
import { Recorder, type LogEntry } from './recorder.js';
import { SessionIds } from './session-ids.js';
import { closeSocket, Session, type Host, type SessionView } from './session.js';
import { Memory } from './store.js';
import { acceptWebSockets, type Acceptor } from './websocket/acceptor.js';
import type { DeviceSocket } from './websocket/socket.js';

/** How long close()/restart() wait for close handshakes before cutting sockets. */
const CLOSE_GRACE_MS = 500;
/**
 * TCP connections beyond maxSessions the HTTP server still accepts, so that a client over the
 * cap is told `busy` (close 1013) instead of being reset; beyond these, new sockets are dropped.
 */
const CONNECTION_SLACK = 16;

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

const SHUTDOWN_REASON = 'shutdown: device shutting down';

class DeviceServer implements Device, Host {
  readonly memory: Memory;
  readonly faults = new Faults();
  readonly pacer: Pacer;
  readonly recorder: Recorder;
  readonly encoder = new Encoder();
  readonly reclaimer = new FrameReclaimer();
  readonly features: readonly string[];
  readonly ops: ReadonlySet<string>;
  readonly codecs: ReadonlySet<Codec>;
  private readonly offered: ReadonlySet<Feature>;
  private readonly live = new Map<number, Session>();
  private readonly ids = new SessionIds();
  private readonly http: Server;
  private readonly acceptor: Acceptor;
  private closing: Promise<void> | undefined;
  host = '';
  port = 0;

  constructor(readonly options: ResolvedOptions) {
    this.memory = new Memory(options.limits);
    this.pacer = new Pacer(options.bandwidth);
    this.recorder = new Recorder(options.record, options.logFile);
    this.offered = new Set(options.features);
    this.features = options.controlToken !== undefined ? [...options.features, FEATURE_CONTROL] : [...options.features];
    this.ops = new Set(COMMAND_OPS.filter((op) => OP_FEATURE[op] === undefined || this.offered.has(OP_FEATURE[op])));
    this.codecs = new Set(this.offered.has('writeSpans') ? CODECS.filter((c) => c === 'none' || this.offered.has(c)) : []);
    // Raw TCP that never completes an upgrade is bounded too: headers must arrive within the
    // hello timeout (checked at least every second), and the socket count is capped.
    const headersTimeout = Math.min(options.helloTimeout, 60_000);
    this.http = createServer({ headersTimeout, requestTimeout: headersTimeout, connectionsCheckingInterval: Math.min(1000, headersTimeout) }, (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
      res.end('this is a vgpu-dirty device: connect with a WebSocket client\n');
    });
    this.http.maxConnections = options.limits.maxSessions + CONNECTION_SLACK;
    this.acceptor = acceptWebSockets(
      this.http,
      { impl: options.websocket, maxPayload: options.limits.maxMessageSize, poison: options.poisonReleasedFrames, log: options.log },
      (ws) => this.accept(ws),
    );
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

  private accept(ws: DeviceSocket): void {
    ws.on('error', (err) => this.options.log(`socket error before a session: ${err.message}`));
    if (this.closing !== undefined) {
      closeSocket(ws, CloseCode.goingAway, SHUTDOWN_REASON);
      return;
    }
    if (this.live.size >= this.options.limits.maxSessions) {
      const message = `maxSessions ${this.options.limits.maxSessions} connections are open; try again later`;
      this.options.log(`refused a connection: ${message}`);
      ws.send(this.encoder.encode({ op: 'error', code: 'busy', message }), () => {});
      closeSocket(ws, CloseCode.tryAgainLater, `busy: ${message}`);
      return;
    }
    const session = new Session(this.ids.next(), ws, this);
    this.live.set(session.id, session);
    this.options.log(`session ${session.id}: connected`);
  }

  // ---- Host ----

  offers(feature: Feature): boolean {
    return this.offered.has(feature);
  }

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
    await this.endAll(CloseCode.serviceRestart, 'restart: device restarted, all state is lost; reconnect and resync');
    this.memory.reset();
    this.faults.clear();
    this.pacer.reset();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.faults.clear();
      await this.endAll(CloseCode.goingAway, SHUTDOWN_REASON);
      await this.acceptor.close();
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
