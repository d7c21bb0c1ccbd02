import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode } from '@msgpack/msgpack';
import { decodeDriverFrame, ProtocolError } from '../../protocol/index.js';
import { DmaFrameWriter } from '../../src/index.js';

test('hand-encoded write frames are standard MessagePack that the device validator accepts', () => {
  for (const seq of [1, 200, 70_000, 2 ** 32 + 5]) {
    const w = new DmaFrameWriter(new Uint8Array(1 << 16));
    w.beginWrite(seq, 300, 7, seq + 1);
    w.addRange(0, 3, (b, at) => b.set([1, 2, 3], at));
    w.addRange(70_000, 2, (b, at) => b.set([9, 8], at));
    const frame = w.finish();
    const msg = decodeDriverFrame(frame);
    assert.ok(!(msg instanceof ProtocolError), String(msg));
    assert.deepEqual(msg, { op: 'write', seq, bo: 300, seen: 7, fence: seq + 1, ranges: [[0, new Uint8Array([1, 2, 3])], [70_000, new Uint8Array([9, 8])]] });
    const independent = decode(frame, { useBigInt64: false }) as Record<string, unknown>;
    assert.equal(independent['op'], 'write');
    assert.equal(Number(independent['seq']), seq);
  }
});

test('hand-encoded writeSurface frames decode to the boxes and pixels given', () => {
  const w = new DmaFrameWriter(new Uint8Array(4096));
  w.beginWriteSurface(7, 2, 0, 3);
  w.addBox(1, 2, 0, 2, 2, 1, 8, (b, at) => b.set([1, 2, 3, 4, 5, 6, 7, 8], at));
  const msg = decodeDriverFrame(w.finish());
  assert.deepEqual(msg, { op: 'writeSurface', seq: 7, sid: 2, seen: 0, fence: 3, boxes: [[1, 2, 0, 2, 2, 1, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])]] });
  assert.equal(w.entries, 1);
});
