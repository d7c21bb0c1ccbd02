import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MessageBufferPool, POISON_BYTE } from '../../../device/websocket/buffer-pool.js';
import { FrameReader, type FrameSink, WebSocketError } from '../../../device/websocket/frame-reader.js';
import { maskLoop, nativeMask, unmaskCopy } from '../../../device/websocket/mask.js';
import { clientFrame, closeFrame, type FrameSpec } from './frames.js';

type Event = { kind: 'message'; binary: boolean; data: number[] } | { kind: 'ping' | 'pong'; data: number[] } | { kind: 'close'; code: number; reason: string };

/** Feeds `bytes` to a reader in pieces cut at `cuts`; returns the events (data copied at delivery) and the error, if any. */
function feed(bytes: Buffer, cuts: number[], maxPayload = 1 << 20, pool = new MessageBufferPool()): { events: Event[]; error?: WebSocketError } {
  const events: Event[] = [];
  const sink: FrameSink = {
    message: (data, binary, release) => {
      events.push({ kind: 'message', binary, data: [...data] });
      release();
    },
    ping: (data) => void events.push({ kind: 'ping', data: [...data] }),
    pong: (data) => void events.push({ kind: 'pong', data: [...data] }),
    close: (code, reason) => void events.push({ kind: 'close', code, reason }),
  };
  const reader = new FrameReader(sink, pool, maxPayload);
  const points = [...new Set(cuts.filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b);
  let from = 0;
  try {
    for (const to of [...points, bytes.length]) {
      // Each piece is its own buffer, as socket reads are.
      const chunk = Buffer.from(bytes.subarray(from, to));
      let at = 0;
      while (at < chunk.length && !reader.done) at = reader.read(chunk, at);
      from = to;
    }
  } catch (e) {
    if (!(e instanceof WebSocketError)) throw e;
    return { events, error: e };
  }
  return { events };
}

const bytesArb = (max: number) => fc.uint8Array({ maxLength: max });
const keyArb = fc.oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.constant(new Uint8Array(4)));

/** A message as frames: fragments of a payload, with control frames between them. */
const messageArb = fc
  .record({
    binary: fc.boolean(),
    payload: fc.oneof(bytesArb(200), bytesArb(70_000)),
    cuts: fc.array(fc.nat({ max: 70_000 }), { maxLength: 4 }),
    controls: fc.array(fc.record({ opcode: fc.constantFrom(9, 10), data: bytesArb(125) }), { maxLength: 3 }),
    keys: fc.array(keyArb, { minLength: 8, maxLength: 8 }),
    wide: fc.boolean(),
  })
  .map(({ binary, payload: bytes, cuts, controls, keys, wide }) => {
    // A text message must be UTF-8: the bytes read as Latin-1 characters, encoded (cuts may
    // still split a character between fragments).
    const payload = binary ? bytes : Buffer.from(Buffer.from(bytes).toString('latin1'), 'utf8');
    const points = [...new Set(cuts.filter((c) => c > 0 && c < payload.length))].sort((a, b) => a - b);
    const pieces = [0, ...points, payload.length].slice(1).map((to, i, all) => payload.subarray(i === 0 ? 0 : all[i - 1]!, to));
    if (pieces.length === 0) pieces.push(payload);
    const frames: FrameSpec[] = [];
    const expected: Event[] = [];
    pieces.forEach((piece, i) => {
      frames.push({ opcode: i === 0 ? (binary ? 2 : 1) : 0, fin: i === pieces.length - 1, payload: piece, key: keys[i % keys.length]!, lengthForm: wide && piece.length < 0x10000 ? 64 : undefined });
      const c = controls[i];
      if (c !== undefined && i < pieces.length - 1) {
        frames.push({ opcode: c.opcode, payload: c.data, key: keys[(i + 3) % keys.length]! });
        expected.push({ kind: c.opcode === 9 ? 'ping' : 'pong', data: [...c.data] });
      }
    });
    expected.push({ kind: 'message', binary, data: [...payload] });
    return { frames, expected };
  });

describe('websocket frame reader', () => {
  it('delivers every message and control frame as sent, whatever the split into reads', () => {
    fc.assert(
      fc.property(fc.array(messageArb, { minLength: 1, maxLength: 4 }), fc.array(fc.nat({ max: 300_000 }), { maxLength: 12 }), fc.boolean(), (messages, cuts, withClose) => {
        const frames = messages.flatMap((m) => m.frames.map(clientFrame));
        const expected = messages.flatMap((m) => m.expected);
        if (withClose) {
          frames.push(closeFrame(1000, 'bye'));
          expected.push({ kind: 'close', code: 1000, reason: 'bye' });
        }
        const { events, error } = feed(Buffer.concat(frames), cuts);
        assert.equal(error, undefined);
        assert.deepEqual(events, expected);
      }),
      { numRuns: 150 },
    );
  });

  it('splits a header at every byte: one read per byte', () => {
    const payload = Buffer.from('abcdefghij'.repeat(30)); // 16-bit length form
    const bytes = Buffer.concat([clientFrame({ opcode: 2, payload }), clientFrame({ opcode: 9, payload: Buffer.from('p') })]);
    const { events } = feed(bytes, Array.from({ length: bytes.length }, (_, i) => i));
    assert.deepEqual(events, [
      { kind: 'message', binary: true, data: [...payload] },
      { kind: 'ping', data: [...Buffer.from('p')] },
    ]);
  });

  it('reuses pool buffers and poisons released ones', () => {
    const pool = new MessageBufferPool({ poison: true });
    const kept: Buffer[] = [];
    const reader = new FrameReader(
      { message: (data, _b, release) => (kept.push(data), release()), ping() {}, pong() {}, close() {} },
      pool,
      1 << 20,
    );
    const payload = Buffer.alloc(100_000, 7);
    for (let i = 0; i < 3; i++) {
      const bytes = clientFrame({ opcode: 2, payload });
      // Two reads: the message spans them, so it goes through a pool buffer.
      reader.read(bytes.subarray(0, 50_000), 0);
      reader.read(bytes.subarray(50_000), 0);
    }
    assert.equal(pool.allocated, 1, 'one buffer served all three messages');
    assert.equal(pool.reused, 2);
    assert.ok(kept.every((k) => k.every((b) => b === POISON_BYTE)), 'released data is poison');
  });

  it('hands a message within one read out as a view; release poisons it in poison mode', () => {
    const pool = new MessageBufferPool({ poison: true });
    let view: Buffer | undefined;
    const reader = new FrameReader({ message: (data, _b, release) => ((view = data), release()), ping() {}, pong() {}, close() {} }, pool, 1 << 20);
    const chunk = clientFrame({ opcode: 2, payload: Buffer.from('hello') });
    reader.read(chunk, 0);
    assert.equal(view!.buffer, chunk.buffer, 'a view of the read, no copy');
    assert.equal(pool.allocated, 0);
    assert.ok(view!.every((b) => b === POISON_BYTE));
  });

  it('pauses between messages: read returns after each delivery', () => {
    const bytes = Buffer.concat([clientFrame({ opcode: 2, payload: Buffer.from('a') }), clientFrame({ opcode: 2, payload: Buffer.from('b') })]);
    let n = 0;
    const reader = new FrameReader({ message: () => void n++, ping() {}, pong() {}, close() {} }, new MessageBufferPool(), 100);
    const at = reader.read(bytes, 0);
    assert.equal(n, 1);
    assert.equal(at, bytes.length / 2);
    reader.read(bytes, at);
    assert.equal(n, 2);
  });

  describe('refuses what ws refuses, with its close code', () => {
    const cases: [string, Buffer, number][] = [
      ['an unmasked client frame', clientFrame({ opcode: 2, payload: Buffer.from('x'), key: null }), 1002],
      ['RSV1 set', clientFrame({ opcode: 2, rsv: 4 }), 1002],
      ['RSV3 set', clientFrame({ opcode: 2, rsv: 1 }), 1002],
      ['opcode 3', clientFrame({ opcode: 3 }), 1002],
      ['opcode 0xb', clientFrame({ opcode: 0xb }), 1002],
      ['a fragmented ping', clientFrame({ opcode: 9, fin: false }), 1002],
      ['a ping of 126 bytes', clientFrame({ opcode: 9, payload: Buffer.alloc(126) }), 1002],
      ['a 64-bit length with the top bit set', clientFrame({ opcode: 2, lengthForm: 64, high: 0x80000000 }), 1002],
      ['a continuation without a message', clientFrame({ opcode: 0, payload: Buffer.from('x') }), 1002],
      ['a new message inside a fragmented one', Buffer.concat([clientFrame({ opcode: 2, fin: false }), clientFrame({ opcode: 2 })]), 1002],
      ['a close frame of 1 byte', clientFrame({ opcode: 8, payload: Buffer.of(3) }), 1002],
      ['close code 1005', closeFrame(1005), 1002],
      ['close code 1006', closeFrame(1006), 1002],
      ['close code 999', closeFrame(999), 1002],
      ['close code 2999', closeFrame(2999), 1002],
      ['close code 5000', closeFrame(5000), 1002],
      ['a close reason that is not UTF-8', Buffer.concat([clientFrame({ opcode: 8, payload: Buffer.of(0x03, 0xe8, 0xc3, 0x28) })]), 1007],
      ['a message over maxPayload', clientFrame({ opcode: 2, payload: Buffer.alloc(1025) }), 1009],
      ['a text message that is not UTF-8', clientFrame({ opcode: 1, payload: Buffer.of(0x61, 0xc0, 0xaf) }), 1007],
      ['a text message ending in a cut character', Buffer.concat([clientFrame({ opcode: 1, fin: false, payload: Buffer.of(0x61) }), clientFrame({ opcode: 0, payload: Buffer.of(0xe2, 0x82) })]), 1007],
      ['fragments adding up to over maxPayload', Buffer.concat([clientFrame({ opcode: 2, fin: false, payload: Buffer.alloc(1000) }), clientFrame({ opcode: 0, payload: Buffer.alloc(25) })]), 1009],
    ];
    for (const [name, bytes, code] of cases) {
      it(`${name}: ${code}`, () => {
        for (const cuts of [[], [1], [2, 3, 5]]) {
          const { error } = feed(bytes, cuts, 1024);
          assert.ok(error instanceof WebSocketError, `${name} refused (cuts ${cuts.join(',')})`);
          assert.equal(error.closeCode, code);
        }
      });
    }
    it('refuses a too-big message from its header, before reading its payload', () => {
      const header = clientFrame({ opcode: 2, payload: Buffer.alloc(2048) }).subarray(0, 8);
      const { error } = feed(header, [], 1024);
      assert.equal(error?.closeCode, 1009);
    });
    it('accepts the close codes a peer may send, and a close without a code', () => {
      for (const code of [1000, 1001, 1003, 1007, 1011, 1014, 3000, 4999]) {
        assert.deepEqual(feed(closeFrame(code, 'é'), []).events, [{ kind: 'close', code, reason: 'é' }]);
      }
      assert.deepEqual(feed(closeFrame(undefined), []).events, [{ kind: 'close', code: 1005, reason: '' }]);
    });
    it('a close frame inside a fragmented message: the close is delivered, the partial message\'s buffer goes back', () => {
      const pool = new MessageBufferPool();
      const { events } = feed(Buffer.concat([clientFrame({ opcode: 2, fin: false, payload: Buffer.alloc(5000, 1) }), closeFrame(1001, 'bye')]), [100], 1 << 20, pool);
      assert.deepEqual(events, [{ kind: 'close', code: 1001, reason: 'bye' }]);
      assert.equal(pool.allocated, 1);
      assert.ok(pool.idleBytes >= 5000, 'the partial message\'s buffer is free again');
    });
    it('reads nothing after a close frame', () => {
      const { events } = feed(Buffer.concat([closeFrame(1000), clientFrame({ opcode: 2, payload: Buffer.from('late') })]), []);
      assert.deepEqual(events, [{ kind: 'close', code: 1000, reason: '' }]);
    });
  });

  it('unmasks while copying exactly as the plain loop does, at every key phase, native or not', () => {
    assert.equal(typeof nativeMask, 'boolean');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.nat({ max: 7 }), fc.nat({ max: 5 }), (src, key, phase, to) => {
        const out = Buffer.alloc(src.length + to);
        unmaskCopy(src, 0, src.length, key, false, phase, out, to);
        const rotated = Uint8Array.from([0, 1, 2, 3], (i) => key[(i + phase) & 3]!);
        const expected = Buffer.alloc(src.length + to);
        maskLoop(src, rotated, expected, to, src.length);
        assert.deepEqual(out, expected);
        const inPlace = Buffer.from(src);
        unmaskCopy(inPlace, 0, inPlace.length, key, false, phase, inPlace, 0);
        assert.deepEqual(inPlace, expected.subarray(to));
      }),
    );
  });
});
