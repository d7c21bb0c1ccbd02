// The session gives every received message's buffer back only when nothing reads it any more:
// with poisoning on, a buffer given back too early would put poison into the BO or the log.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decode } from '@msgpack/msgpack';
import { startDevice, type Device } from '../../../device/index.js';
import { POISON_BYTE } from '../../../device/websocket/buffer-pool.js';
import { WireClient } from '../../../src/conformance/index.js';

const PIECE = 128 << 10; // larger than a socket read: each message goes through a pool buffer
const PIECES = 12;

function piece(i: number): Buffer {
  return Buffer.alloc(PIECE, i + 1);
}

describe('received buffers and their release (poisoned on release)', () => {
  let device: Device;
  before(async () => {
    device = await startDevice({ poisonReleasedFrames: true, record: true, limits: { maxBoSize: PIECE * PIECES } });
  });
  after(() => device.close());

  it('queued commands keep their buffers until applied; the BO gets the data, not poison', async () => {
    const c = await WireClient.session(device.url);
    try {
      const session = c.welcome!.session;
      c.cmd({ op: 'defineBo', bo: 1, size: PIECE * PIECES });
      device.faults.stall({ session }); // received, queued, not applied
      for (let i = 0; i < PIECES; i++) c.cmd({ op: 'write', bo: 1, ranges: [[i * PIECE, piece(i)]] });
      const seq = c.cmd({ op: 'fence', fence: 1 });
      await new Promise((r) => setTimeout(r, 100));
      device.faults.release();
      const m = await c.next();
      assert.deepEqual(m, { op: 'signaled', seq, fence: 1, ok: true });
      const bo = device.session(session)!.bo(1)!;
      for (let i = 0; i < PIECES; i++) {
        const got = bo.subarray(i * PIECE, (i + 1) * PIECE);
        assert.ok(got.every((b) => b === i + 1), `piece ${i}: ${got.some((b) => b === POISON_BYTE) ? 'poison' : 'wrong bytes'}`);
      }
      // A second round reuses the buffers the first gave back; the data still arrives intact.
      for (let i = 0; i < PIECES; i++) c.cmd({ op: 'write', bo: 1, ranges: [[i * PIECE, piece(PIECES - 1 - i)]] });
      const seq2 = c.cmd({ op: 'fence', fence: 2 });
      assert.deepEqual(await c.next(), { op: 'signaled', seq: seq2, fence: 2, ok: true });
      const bo2 = device.session(session)!.bo(1)!;
      for (let i = 0; i < PIECES; i++) assert.ok(bo2.subarray(i * PIECE, (i + 1) * PIECE).every((b) => b === PIECES - i), `round 2, piece ${i}`);
    } finally {
      await c.close();
    }
  });

  it('the recorder keeps copies: recorded frames stay intact after their buffers went back', async () => {
    const c = await WireClient.session(device.url);
    try {
      const session = c.welcome!.session;
      c.cmd({ op: 'defineBo', bo: 1, size: PIECE * PIECES });
      for (let i = 0; i < 4; i++) c.cmd({ op: 'write', bo: 1, ranges: [[i * PIECE, piece(i)]] });
      const seq = c.cmd({ op: 'fence', fence: 1 });
      assert.deepEqual(await c.next(), { op: 'signaled', seq, fence: 1, ok: true });
      const writes = device.log
        .filter((e) => e.session === session)
        .map((e) => decode(e.frame) as { op: string; ranges?: [number, Uint8Array][] })
        .filter((m) => m.op === 'write');
      assert.equal(writes.length, 4);
      writes.forEach((w, i) => assert.ok(Buffer.from(w.ranges![0]![1]).equals(piece(i)), `recorded write ${i}`));
    } finally {
      await c.close();
    }
  });

  it('a session that ends with commands queued gives their buffers back without applying them', async () => {
    const c = await WireClient.session(device.url);
    const session = c.welcome!.session;
    c.cmd({ op: 'defineBo', bo: 1, size: PIECE * PIECES });
    device.faults.stall({ session });
    for (let i = 0; i < PIECES; i++) c.cmd({ op: 'write', bo: 1, ranges: [[i * PIECE, piece(i)]] });
    await new Promise((r) => setTimeout(r, 100));
    await c.close();
    for (let i = 0; i < 50 && device.session(session) !== undefined; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(device.session(session), undefined, 'session gone');
    device.faults.release();
    // The device still serves a new session normally (nothing corrupted, nothing stuck).
    const d = await WireClient.session(device.url);
    try {
      d.cmd({ op: 'defineBo', bo: 1, size: PIECE });
      d.cmd({ op: 'write', bo: 1, ranges: [[0, piece(3)]] });
      const seq = d.cmd({ op: 'fence', fence: 1 });
      assert.deepEqual(await d.next(), { op: 'signaled', seq, fence: 1, ok: true });
      assert.ok(device.session(d.welcome!.session)!.bo(1)!.every((b) => b === 4));
    } finally {
      await d.close();
    }
  });
});
