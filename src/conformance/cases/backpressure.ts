// §9.3 backpressure: a client that sends and never reads must not make the device buffer
// without bound. Observable from outside: the device stops reading, so the client's own send
// buffer grows and stays; once the client reads again, every reply arrives, in order.
import { Encoder } from '../../../protocol/index.js';
import { applied, check, NotApplicable, same, type Case } from '../case.js';
import type { WireClient } from '../client.js';
import { maskedFrame, socketOf } from '../raw-frames.js';

/** Bytes the client may send while none of its replies are read before the device counts as not pushing back. */
const BUDGET = 64 * 1024 * 1024;
/** Client send-buffer bytes that, held for STUCK_MS without draining, show the device stopped reading. */
const STUCK_BYTES = 512 * 1024;
const STUCK_MS = 400;

/**
 * Stops reading, then sends frames (seq from `first`) until the device stops reading (PASS) or
 * BUDGET bytes went out (FAIL). Returns the last seq sent.
 */
async function floodUnread(c: WireClient, payloadFor: (seq: number) => Uint8Array, first: number, what: string): Promise<number> {
  c.pauseReading();
  const sock = socketOf(c);
  let seq = first - 1;
  let sent = 0;
  while (sent < BUDGET) {
    const chunk: Buffer[] = [];
    for (let bytes = 0; bytes < 64 * 1024; ) {
      const f = maskedFrame(payloadFor(++seq));
      chunk.push(f);
      bytes += f.length;
    }
    const data = Buffer.concat(chunk);
    sock.write(data);
    sent += data.length;
    if (sock.writableLength > STUCK_BYTES) {
      const held = sock.writableLength;
      await new Promise((r) => setTimeout(r, STUCK_MS));
      if (sock.writableLength >= held) return seq;
    } else {
      await new Promise((r) => setImmediate(r));
    }
    check(!c.isClosed, `the connection closed during the flood (${c.closedWith?.code} ${c.closedWith?.reason})`);
  }
  throw new Error(`the device read ${BUDGET >> 20} MiB of ${what} while none of its replies were read: it does not push back`);
}

export const backpressureCases: Case[] = [
  {
    id: 'bp.unread-pongs',
    section: '9.3',
    title: 'a client that sends pings and never reads is stopped being read; after it reads, every pong arrives in order',
    timeoutMs: 180_000,
    async run(t) {
      const c = await t.session();
      const enc = new Encoder();
      const last = await floodUnread(c, (seq) => enc.encode({ op: 'ping', seq }), 1, 'pings');
      c.resumeReading();
      for (let seq = 1; seq <= last; seq++) {
        const m = await c.next(10_000);
        if (m.op !== 'pong' || m.seq !== seq) same(m, { op: 'pong', seq }, `reply ${seq} of ${last}`);
      }
    },
  },
  {
    id: 'bp.unread-replies',
    section: '9.3',
    title: 'a client that sends readbacks and never reads is stopped being read; after it reads, every reply arrives in order',
    timeoutMs: 180_000,
    async run(t) {
      const span = 4096;
      if (span + 200 > t.welcome.maxMessageSize) throw new NotApplicable('maxMessageSize below 4 KiB');
      const c = await t.session();
      await applied(c, { op: 'defineBo', bo: 1, size: span });
      const enc = new Encoder();
      // Padded with an unknown key (ignored by the device) so that the request stream fills the
      // socket buffers in few frames; each reply is still ~4× its request.
      const pad = new Uint8Array(1024);
      const first = c.seq + 1;
      const last = await floodUnread(c, (seq) => enc.encode({ op: 'readback', seq, bo: 1, ranges: [[0, span]], pad } as never), first, 'readbacks');
      c.resumeReading();
      for (let seq = first; seq <= last; seq++) {
        const m = await c.next(10_000);
        if (m.op !== 'readbackData' || m.seq !== seq || m.ranges[0]?.[1].length !== span) same([m.op, (m as { seq?: number }).seq], ['readbackData', seq], `reply ${seq - first + 1} of ${last - first + 1}`);
      }
    },
  },
];
