// A fuzz campaign: several workers open connection after connection to the device, each driven
// by an Rng derived from the seed and the connection's number, and check every outcome:
// - the device never closes with 1011 and never dies;
// - every message it sends validates, every error code is documented, replies keep seq order;
// - every close it makes has a documented code; a session still open answers a barrier fence;
// - raw connections are closed by the device on its own within its hello timeout.
// The first failure stops the campaign and is saved as a replayable recording (VGPULOG1).
import { CLOSE_FOR, ERROR_CODES, type DeviceMessage } from '../../protocol/index.js';
import type { LogEntry } from '../../device/index.js';
import { WireClient } from '../conformance/client.js';
import { SessionFrames, type FuzzFrame } from './generate.js';
import { rawTrick } from './raw.js';
import { Rng } from './rng.js';

/** Close codes a device may end a session with (docs/protocol.md §8); 1011 is always a bug. */
const DOCUMENTED_CLOSES = new Set([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1013]);
const KNOWN_ERRORS = new Set<string>(ERROR_CODES);
/** Bound on any single wait for the device. */
const WAIT_MS = 15_000;

export interface CampaignOptions {
  seed: number;
  url: string;
  token?: string;
  controlToken?: string;
  /** Stop after this long (ms) … */
  durationMs: number;
  /** … or after this many frames, whichever comes first. */
  maxFrames: number;
  workers: number;
  /** The device's hello timeout: raw connections must be closed within it (plus slack). */
  helloTimeoutMs: number;
  /** undefined while the device lives; why it died otherwise. */
  deviceDied(): string | undefined;
  onProgress?(s: CampaignStats): void;
}

export interface Failure {
  kind: 'crash' | '1011' | 'invalid-message' | 'unknown-error-code' | 'order' | 'hang' | 'close-code' | 'raw-not-closed';
  connection: number;
  detail: string;
  /** The frames the failing connection sent (for a crash: every connection in flight). */
  recording: LogEntry[];
  /** What each recorded frame was (same order). */
  notes: string[];
}

export interface CampaignStats {
  seed: number;
  frames: number;
  connections: number;
  /** Device errors by code. */
  errors: Record<string, number>;
  /** Closes the device started, by code. */
  closes: Record<string, number>;
  /** Connections the fuzzer closed itself (the device echoes 1000). */
  ownCloses: number;
  /** Connections of each kind. */
  kinds: Record<string, number>;
  internalErrors: number;
  crashes: number;
  elapsedMs: number;
  failure: Failure | undefined;
}

type Kind = 'session' | 'churn' | 'raw' | 'ws-pings' | 'crowd' | 'slow-reader';
const KINDS: [Kind, number][] = [['session', 84], ['churn', 5], ['raw', 5], ['slow-reader', 3], ['ws-pings', 2], ['crowd', 1]];

export async function runCampaign(o: CampaignOptions): Promise<CampaignStats> {
  const stats: CampaignStats = {
    seed: o.seed, frames: 0, connections: 0, errors: {}, closes: {}, ownCloses: 0, kinds: {}, internalErrors: 0, crashes: 0, elapsedMs: 0, failure: undefined,
  };
  const t0 = performance.now();
  const inFlight = new Map<number, Conn>();
  let next = 0;
  const over = (): boolean => stats.failure !== undefined || stats.frames >= o.maxFrames || performance.now() - t0 >= o.durationMs;
  const fail = (f: Omit<Failure, 'recording' | 'notes'>, conn: Conn | undefined): void => {
    if (stats.failure !== undefined) return;
    const conns = conn !== undefined ? [conn] : [...inFlight.values()];
    stats.failure = { ...f, recording: conns.flatMap((c) => c.log), notes: conns.flatMap((c) => c.notes) };
  };
  const progress = setInterval(() => o.onProgress?.({ ...stats, elapsedMs: performance.now() - t0 }), 5000);

  const worker = async (): Promise<void> => {
    while (!over()) {
      const n = next++;
      const rng = new Rng(o.seed, n);
      const kind = weighted(rng);
      stats.kinds[kind] = (stats.kinds[kind] ?? 0) + 1;
      stats.connections++;
      const conn = new Conn(n, t0, stats);
      inFlight.set(n, conn);
      try {
        await runConnection(kind, conn, rng, o, stats, (f) => fail({ ...f, connection: n }, conn));
      } catch (e) {
        // A connection that could not even be opened is no finding unless the device died.
        if (o.deviceDied() === undefined && !/ECONNRESET|socket hang up|Unexpected server response|ECONNREFUSED/.test(String(e))) {
          fail({ kind: 'hang', connection: n, detail: `connection ${n} (${kind}): ${(e as Error).message}` }, conn);
        }
      } finally {
        inFlight.delete(n);
      }
      const died = o.deviceDied();
      if (died !== undefined) {
        stats.crashes++;
        fail({ kind: 'crash', connection: n, detail: `the device process exited (${died})` }, undefined);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: o.workers }, () => worker()));
  } finally {
    clearInterval(progress);
  }
  stats.elapsedMs = performance.now() - t0;
  return stats;
}

/** One connection's frames, for a recording of it. */
class Conn {
  readonly log: LogEntry[] = [];
  readonly notes: string[] = [];
  constructor(readonly n: number, private readonly t0: number, private readonly stats: CampaignStats) {}

  send(client: WireClient, f: FuzzFrame): void {
    const bytes = typeof f.data === 'string' ? Buffer.from(f.data) : f.data;
    this.log.push({ session: this.n, time: performance.now() - this.t0, frame: bytes });
    this.notes.push(typeof f.data === 'string' ? `${f.note} (sent as text; replayed as binary)` : f.note);
    this.stats.frames++;
    client.sendRaw(f.data);
  }
}

function weighted(rng: Rng): Kind {
  let r = rng.int(KINDS.reduce((s, [, w]) => s + w, 0));
  for (const [k, w] of KINDS) {
    if (r < w) return k;
    r -= w;
  }
  return 'session';
}

type Fail = (f: Omit<Failure, 'recording' | 'notes' | 'connection'>) => void;

async function runConnection(kind: Kind, conn: Conn, rng: Rng, o: CampaignOptions, stats: CampaignStats, fail: Fail): Promise<void> {
  if (kind === 'raw') {
    const url = new URL(o.url);
    const r = await rawTrick(rng, url.hostname, Number(url.port), o.helloTimeoutMs + 3000);
    stats.frames++;
    if (r.closedAfterMs === undefined) fail({ kind: 'raw-not-closed', detail: `raw trick '${r.trick}': the device kept the connection past its hello timeout + 3 s` });
    return;
  }
  if (kind === 'crowd') {
    // More connections at once than a device usually allows: the extra ones get busy/1013.
    const clients = await Promise.all(Array.from({ length: 16 + rng.int(48) }, () => WireClient.open(o.url, WAIT_MS).catch(() => undefined)));
    stats.frames += clients.length;
    await new Promise((r) => setTimeout(r, 100));
    for (const c of clients) {
      if (c === undefined) continue;
      const refused = c.isClosed;
      if (!refused) await c.close();
      check(c, !refused, stats, fail);
    }
    return;
  }
  const client = await WireClient.open(o.url, WAIT_MS);
  let weClosed = false;
  try {
    conn.send(client, SessionFrames.hello(rng, o.token, o.controlToken));
    const first = await client.next(WAIT_MS).catch(() => undefined);
    if (first?.op !== 'welcome') return;
    const frames = new SessionFrames(rng, first);
    if (kind === 'ws-pings') {
      client.pauseReading();
      for (let i = 0; i < 200; i++) client.ws.ping(rng.bytes(rng.int(126)));
      stats.frames += 200;
      await new Promise((r) => setTimeout(r, 50));
      return;
    }
    if (kind === 'slow-reader') client.pauseReading();
    const burst = kind === 'slow-reader' ? 200 + rng.int(800) : 1 + rng.int(80);
    for (let i = 0; i < burst && !client.isClosed; i++) {
      conn.send(client, kind === 'slow-reader' && rng.chance(0.7) ? frames.slowReaderFrame() : frames.next());
      if (i % 16 === 15) await new Promise((r) => setImmediate(r));
    }
    if (kind === 'slow-reader') {
      await new Promise((r) => setTimeout(r, rng.int(200)));
      client.resumeReading();
    }
    if (kind === 'churn' || client.isClosed) return;
    const barrierSeq = frames.seq + 1;
    conn.send(client, frames.barrier(barrierSeq));
    const deadline = performance.now() + WAIT_MS;
    while (!client.isClosed && performance.now() < deadline && !client.received.some((m) => m.op === 'signaled' && m.seq === barrierSeq)) {
      await new Promise((r) => setTimeout(r, 2));
    }
    if (!client.isClosed && !client.received.some((m) => m.op === 'signaled' && m.seq === barrierSeq)) {
      fail({ kind: 'hang', detail: `the barrier fence (seq ${barrierSeq}) was not signalled within ${WAIT_MS} ms on an open session` });
    }
  } finally {
    weClosed = !client.isClosed;
    if (kind === 'churn' && rng.chance(0.7)) client.terminate();
    else await client.close();
    await client.closed;
    check(client, weClosed, stats, fail);
  }
}

/** The oracle for one finished connection. */
function check(client: WireClient, weClosed: boolean, stats: CampaignStats, fail: Fail): void {
  let lastSeq = -1;
  let lastOp = '';
  let lastError: string | undefined;
  for (const m of client.received) {
    if (m.op === '<invalid>') return fail({ kind: 'invalid-message', detail: `the device sent a frame that does not validate: ${m.problem}` });
    const msg = m as DeviceMessage;
    if (msg.op === 'error') {
      stats.errors[msg.code] = (stats.errors[msg.code] ?? 0) + 1;
      lastError = msg.code;
      if (!KNOWN_ERRORS.has(msg.code)) return fail({ kind: 'unknown-error-code', detail: `undocumented error code '${msg.code}': ${msg.message}` });
    }
    const seq = (msg as { seq?: number }).seq;
    // Replies follow seq order; the one equal pair is a rejected frame's error and then the
    // signal of the fence it carried.
    if (msg.op !== 'pong' && seq !== undefined) {
      if (seq < lastSeq || (seq === lastSeq && !(msg.op === 'signaled' && lastOp === 'error'))) {
        return fail({ kind: 'order', detail: `${msg.op} for seq ${seq} after ${lastOp} for seq ${lastSeq}` });
      }
      lastSeq = seq;
      lastOp = msg.op;
    }
  }
  const closed = client.closedWith;
  if (closed === undefined) return;
  if (!weClosed) {
    stats.closes[closed.code] = (stats.closes[closed.code] ?? 0) + 1;
    if (closed.code === 1011) {
      stats.internalErrors++;
      return fail({ kind: '1011', detail: `the device closed with 1011 '${closed.reason}'` });
    }
    if (closed.code === 1006) return; // cut: WebSocket ping flood (ws) or our own terminate
    if (!DOCUMENTED_CLOSES.has(closed.code)) return fail({ kind: 'close-code', detail: `undocumented close ${closed.code} '${closed.reason}'` });
    if (lastError !== undefined && CLOSE_FOR[lastError as keyof typeof CLOSE_FOR] === closed.code && !closed.reason.startsWith(`${lastError}: `)) {
      return fail({ kind: 'close-code', detail: `close ${closed.code} after error ${lastError} has reason '${closed.reason}'` });
    }
  } else {
    stats.ownCloses++;
  }
}
