// writeSpans on the device: applied from the frame, atomic, bounded when compressed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateRawSync } from 'node:zlib';
import { DEFAULT_LIMITS, encodeSpanTable, ProtocolError } from '../../protocol/index.js';
import { Memory, Namespace } from '../../device/store.js';

function namespace() {
  const ns = new Namespace(new Memory({ ...DEFAULT_LIMITS, maxMessageSize: 1 << 14, maxRanges: 8, maxSessions: 1, maxSessionBos: 8, maxSessionBytes: 1 << 20, maxSessionSurfaces: 1 }));
  ns.defineBo(1, 4096);
  return ns;
}
const both = new Set(['none', 'deflate'] as const);

test('writeSpans copies each span in order, raw or deflated, and counts the bytes', () => {
  const ns = namespace();
  const table = encodeSpanTable([[10, 3], [11, 2], [4090, 6]]);
  const data = Uint8Array.of(1, 2, 3, 8, 9, 4, 4, 4, 4, 4, 4);
  assert.equal(ns.writeSpans(1, table, data, 'none', both), 11);
  assert.deepEqual([...ns.bytesOf(1)!.subarray(10, 13)], [1, 8, 9]);
  assert.equal(ns.writeSpans(1, table, deflateRawSync(data.map((b) => b + 1)), 'deflate', both), 11);
  assert.deepEqual([...ns.bytesOf(1)!.subarray(10, 13)], [2, 9, 10]);
  assert.deepEqual([...ns.bytesOf(1)!.subarray(4090)], [5, 5, 5, 5, 5, 5]);
});

test('writeSpans checks everything before writing: shape, count, range, total, codec, data', () => {
  const ns = namespace();
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof ProtocolError);
      return e.code;
    }
    return 'applied';
  };
  const one = encodeSpanTable([[0, 4]]);
  assert.equal(code(() => ns.writeSpans(2, one, new Uint8Array(4), 'none', both, 1)), 'unknown_bo');
  assert.equal(code(() => ns.writeSpans(1, one.subarray(0, 7), new Uint8Array(4), 'none', both)), 'bad_message');
  assert.equal(code(() => ns.writeSpans(1, encodeSpanTable(Array(9).fill([0, 0])), new Uint8Array(0), 'none', both)), 'limit');
  assert.equal(code(() => ns.writeSpans(1, encodeSpanTable([[0, 4], [4093, 4]]), new Uint8Array(8), 'none', both)), 'out_of_range');
  assert.equal(code(() => ns.writeSpans(1, encodeSpanTable(Array(8).fill([0, 4096])), new Uint8Array(0), 'none', both)), 'limit');
  assert.equal(code(() => ns.writeSpans(1, one, deflateRawSync(new Uint8Array(4)), 'deflate', new Set(['none'] as const))), 'bad_message');
  assert.equal(code(() => ns.writeSpans(1, one, new Uint8Array(4), 'lz77', both)), 'bad_message');
  assert.equal(code(() => ns.writeSpans(1, one, new Uint8Array(5), 'none', both)), 'bad_message');
  assert.equal(code(() => ns.writeSpans(1, one, deflateRawSync(new Uint8Array(1 << 20)), 'deflate', both)), 'bad_message');
  assert.equal(code(() => ns.writeSpans(1, one, Uint8Array.of(1, 2, 3), 'deflate', both)), 'bad_message');
  assert.deepEqual(ns.bytesOf(1), new Uint8Array(4096), 'nothing written by any of them');
});
