import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decode as msgpackDecode, encode as msgpackEncode } from '@msgpack/msgpack';
import fc from 'fast-check';
import {
  decodeDeviceFrame,
  decodeDriverFrame,
  decodeFrame,
  Encoder,
  ProtocolError,
  type DriverMessage,
} from '../../protocol/index.js';
import { DEVICE_EXAMPLES, DRIVER_EXAMPLES } from './examples.js';

const encoder = new Encoder();

/** Decoders differ in the class of bin values (Buffer or Uint8Array); make them Buffers to compare. */
function toBuffers(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (Array.isArray(v)) return v.map(toBuffers);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toBuffers(x)]));
  return v;
}

/** @msgpack/msgpack: an independent MessagePack implementation. */
function independentDecode(frame: Uint8Array): unknown {
  return toBuffers(msgpackDecode(frame));
}

describe('codec', () => {
  it('round-trips every driver message', () => {
    for (const msg of DRIVER_EXAMPLES) assert.deepEqual(decodeDriverFrame(encoder.encode(msg)), msg, msg.op);
  });

  it('round-trips every device message', () => {
    for (const msg of DEVICE_EXAMPLES) assert.deepEqual(decodeDeviceFrame(encoder.encode(msg)), msg, msg.op);
  });

  it('emits standard MessagePack that an independent implementation decodes identically', () => {
    for (const msg of [...DRIVER_EXAMPLES, ...DEVICE_EXAMPLES]) {
      assert.deepEqual(independentDecode(encoder.encode(msg)), msg, msg.op);
    }
  });

  it('decodes what an independent encoder produces', () => {
    for (const msg of DRIVER_EXAMPLES) assert.deepEqual(toBuffers(decodeDriverFrame(msgpackEncode(msg))), msg, msg.op);
  });

  it('writes integers ≥ 2^32 as 64-bit ints, never floats', () => {
    const frame = encoder.encode({ op: 'fence', seq: 1, fence: 2 ** 40 });
    // fence is the last field: its value is the last 9 bytes, a 64-bit int marker + 8 bytes.
    const marker = frame[frame.length - 9]!;
    assert.ok(marker === 0xcf || marker === 0xd3, `format byte 0x${marker.toString(16)}`);
    assert.equal(Buffer.from(frame.subarray(-8)).readBigUInt64BE(), 2n ** 40n);
  });

  it('omits absent optional fields instead of encoding undefined', () => {
    const frame = encoder.encode({ op: 'error', code: 'limit', message: 'x', seq: undefined });
    assert.deepEqual(independentDecode(frame), { op: 'error', code: 'limit', message: 'x' });
  });

  it('keeps earlier encoded frames intact while encoding more (arena reuse is safe)', () => {
    const first = encoder.encode(DRIVER_EXAMPLES[5]!);
    const copy = Buffer.from(first);
    for (let i = 0; i < 2000; i++) encoder.encode({ op: 'write', seq: i + 1, bo: 1, ranges: [[0, Buffer.alloc(100, i)]] });
    assert.deepEqual(Buffer.from(first), copy);
  });

  it('reports malformed frames as ProtocolError "malformed"', () => {
    const cases: Record<string, number[]> = {
      empty: [],
      truncated: [0x82, 0xa2, 0x6f, 0x70],
      trailing: [0x01, 0x02],
      reserved: [0xc1],
      reservedNested: [0x81, 0xa1, 0x61, 0xc1],
      unknownExtension: [0xd4, 0x05, 0x01],
      recordExtension: [0xd4, 0x72, 0x40, 0x92, 0xa1, 0x61, 0xa1, 0x62, 0x40, 0x01, 0x02],
    };
    for (const [name, bytes] of Object.entries(cases)) {
      const r = decodeFrame(Uint8Array.from(bytes));
      assert.ok(r instanceof ProtocolError, name);
      assert.equal(r.code, 'malformed', name);
    }
  });

  it('makes a well-formed frame of the wrong shape a bad message with its seq (non-str key, deep nesting)', () => {
    const nonStrKey = decodeDriverFrame(Uint8Array.from([0x83, 0xa2, 0x6f, 0x70, 0xa5, ...Buffer.from('stats'), 0xa3, ...Buffer.from('seq'), 0x05, 0x01, 0x02]));
    assert.ok(nonStrKey instanceof ProtocolError);
    assert.deepEqual([nonStrKey.code, nonStrKey.seq], ['bad_message', 5]);
    const deep = decodeDriverFrame(Uint8Array.from([0x83, 0xa2, 0x6f, 0x70, 0xa5, ...Buffer.from('stats'), 0xa3, ...Buffer.from('seq'), 0x06, 0xa1, 0x78, ...new Array(30_000).fill(0x91), 0xc0]));
    assert.ok(deep instanceof ProtocolError);
    assert.deepEqual([deep.code, deep.seq], ['bad_message', 6]);
    assert.match(deep.message, /nesting deeper than 8 levels/);
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const r = decodeDriverFrame(bytes);
        assert.ok(r instanceof ProtocolError || typeof r.op === 'string');
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips random write messages', () => {
    const range = fc.tuple(fc.nat({ max: 2 ** 32 - 1 }), fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)));
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 53 - 1 }), fc.nat({ max: 2 ** 32 - 1 }), fc.array(range, { maxLength: 8 }), (seq, bo, ranges) => {
        const msg: DriverMessage = { op: 'write', seq, bo, ranges };
        assert.deepEqual(decodeDriverFrame(encoder.encode(msg)), msg);
      }),
      { numRuns: 300 },
    );
  });
});
