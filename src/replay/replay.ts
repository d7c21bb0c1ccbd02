// Replays a recording (docs/protocol.md §12.4/§12.5): each recorded session's frames go, exactly
// as recorded and in recorded order, to a device on a connection of their own; the replies are
// collected per session. A failure recorded once is reproducible and shareable.
import {
  decodeDriverFrame,
  Encoder,
  ProtocolError,
  type DeviceMessage,
  type DriverMessage,
} from '../../protocol/index.js';
import { startDevice, type Device, type LogEntry } from '../../device/index.js';
import { WireClient, type Closed } from '../conformance/client.js';

/**
 * seq of the barrier fence sent after a session's last frame, and of the ping that follows once
 * every session's barrier is signalled: its pong comes after anything other sessions caused
 * (deviceWrite from a control session). The two largest seqs there are.
 */
export const BARRIER_SEQ = Number.MAX_SAFE_INTEGER - 1;
export const LAST_PING_SEQ = Number.MAX_SAFE_INTEGER;
/** How long to wait for quiet when a barrier cannot be sent. */
const QUIET_MS = 500;
/** Bound on waiting for a session's welcome or its barrier's signal. */
const WAIT_MS = 10_000;
/** Longest recorded gap between frames of different sessions that the replay reproduces. */
const MAX_SWITCH_GAP_MS = 1000;

export interface SentFrame {
  bytes: Uint8Array;
  /** The frame as the device will validate it (a ProtocolError for bad or malformed frames). */
  msg: DriverMessage | ProtocolError;
  /** Set when a control gpuWrite's session was rewritten to the replayed session's id. */
  rewritten?: string;
}

export interface ReplayedSession {
  /** Session id in the recording. */
  recorded: number;
  /** Session id on the replay device, once welcomed. */
  session: number | undefined;
  sent: SentFrame[];
  /** Everything the device sent, in order (the barrier's signal included, last). */
  replies: (DeviceMessage | { op: '<invalid>'; problem: string })[];
  /** Whether the barrier fence and last ping ended the session (else it closed, or quiet was awaited). */
  barrier: boolean;
  /** How the device closed the connection; undefined when it stayed open to the end. */
  closed: Closed | undefined;
}

export interface ReplayReport {
  url: string;
  inProcess: boolean;
  sessions: ReplayedSession[];
}

export interface ReplayOptions {
  /** A device to replay against; default: a fresh in-process reference device. */
  url?: string;
}

export async function replay(entries: readonly LogEntry[], opts: ReplayOptions = {}): Promise<ReplayReport> {
  let device: Device | undefined;
  if (opts.url === undefined) device = await startDevice({ controlToken: controlTokenOf(entries) });
  const url = opts.url ?? device!.url;
  const encoder = new Encoder();
  const live = new Map<number, { out: ReplayedSession; client: WireClient; lastSeq: number }>();
  try {
    let previous: LogEntry | undefined;
    for (const e of entries) {
      // Frames of one session keep their order on its connection by themselves. Between sessions
      // nothing orders them, so the replay waits as long as the recording did (bounded): what one
      // session caused before another acted (a defined BO, a control write) happens again first.
      if (previous !== undefined && previous.session !== e.session) {
        const gap = Math.min(MAX_SWITCH_GAP_MS, e.time - previous.time);
        if (gap > 0) await new Promise((r) => setTimeout(r, gap));
      }
      previous = e;
      let s = live.get(e.session);
      if (s === undefined) {
        const client = await WireClient.open(url, WAIT_MS);
        s = { out: { recorded: e.session, session: undefined, sent: [], replies: [], barrier: false, closed: undefined }, client, lastSeq: -1 };
        live.set(e.session, s);
      }
      const msg = decodeDriverFrame(e.frame);
      let frame: SentFrame = { bytes: e.frame, msg };
      if (!(msg instanceof ProtocolError) && msg.op === 'gpuWrite' && msg.session !== undefined && msg.session !== e.session && live.has(msg.session)) {
        const target = await welcomed(live.get(msg.session)!);
        if (target !== undefined) {
          const again: DriverMessage = { ...msg, session: target };
          frame = { bytes: encoder.encode(again), msg: again, rewritten: `session ${msg.session} → ${target}` };
        }
      }
      if (!(msg instanceof ProtocolError) && msg.op !== 'hello') s.lastSeq = Math.max(s.lastSeq, msg.seq);
      else if (msg instanceof ProtocolError && msg.seq !== undefined) s.lastSeq = Math.max(s.lastSeq, msg.seq);
      s.out.sent.push(frame);
      s.client.sendRaw(frame.bytes);
      if (!(msg instanceof ProtocolError) && msg.op === 'hello') void welcomed(s);
    }
    const sessions = [...live.values()];
    const open = await Promise.all(sessions.map((s) => barrier(s)));
    await Promise.all(sessions.map((s, i) => finish(s, open[i]!)));
    return { url, inProcess: device !== undefined, sessions: [...live.values()].map((s) => s.out) };
  } finally {
    for (const s of live.values()) s.client.terminate();
    await device?.close();
  }
}

/** The replayed session's id once its welcome arrived (undefined if it never does). */
async function welcomed(s: { out: ReplayedSession; client: WireClient }): Promise<number | undefined> {
  const deadline = performance.now() + WAIT_MS;
  while (s.out.session === undefined && performance.now() < deadline && !s.client.isClosed) {
    const w = s.client.received.find((m) => m.op === 'welcome');
    if (w !== undefined && w.op === 'welcome') s.out.session = w.session;
    else await new Promise((r) => setTimeout(r, 5));
  }
  return s.out.session;
}

type Live = { out: ReplayedSession; client: WireClient; lastSeq: number };

/**
 * Sends the barrier fence when the session is open and its seqs leave room, and waits for its
 * signal; otherwise waits for quiet. Returns whether the session took the barrier.
 */
async function barrier(s: Live): Promise<boolean> {
  const { client, out } = s;
  const hello = out.sent.some((f) => !(f.msg instanceof ProtocolError) && f.msg.op === 'hello');
  if (hello && (await welcomed(s)) !== undefined && !client.isClosed && s.lastSeq < BARRIER_SEQ) {
    out.barrier = true;
    client.send({ op: 'fence', seq: BARRIER_SEQ, fence: BARRIER_SEQ });
    await until(client, (m) => m.op === 'signaled' && m.seq === BARRIER_SEQ);
    return !client.isClosed;
  }
  for (let seen = -1; seen !== client.received.length && !client.isClosed; ) {
    seen = client.received.length;
    await new Promise((r) => setTimeout(r, QUIET_MS));
  }
  return false;
}

/** The last ping (after every barrier), then the replies are final; closes the connection. */
async function finish(s: Live, open: boolean): Promise<void> {
  const { client, out } = s;
  if (open) {
    client.send({ op: 'ping', seq: LAST_PING_SEQ });
    await until(client, (m) => m.op === 'pong' && m.seq === LAST_PING_SEQ);
  }
  out.replies = [...client.received];
  out.closed = client.closedWith; // undefined: the device left it open, the replay closes it
  if (!client.isClosed) await client.close();
}

/** Waits (bounded) until a received message satisfies `done`, or the connection closes. */
async function until(client: WireClient, done: (m: { op: string; seq?: number }) => boolean): Promise<void> {
  const deadline = performance.now() + WAIT_MS;
  while (!client.isClosed && performance.now() < deadline && !client.received.some((m) => done(m as { op: string; seq?: number }))) {
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The token of the recording's first control hello, so the in-process device accepts it. */
function controlTokenOf(entries: readonly LogEntry[]): string | undefined {
  for (const e of entries) {
    const m = decodeDriverFrame(e.frame);
    if (!(m instanceof ProtocolError) && m.op === 'hello' && m.role === 'control' && typeof m.token === 'string' && m.token !== '') return m.token;
  }
  return undefined;
}
