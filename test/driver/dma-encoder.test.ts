import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode } from '@msgpack/msgpack';
import { decodeDriverFrame, ProtocolError } from '../../protocol/index.js';
import fc from 'fast-check';
import { DmaFrameWriter, fillBatch, SurfaceResource, type Upload } from '../../src/index.js';
import { propertySeed } from '../core/fixtures.js';
import { offlineSpace } from './fixtures.js';

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

test('fillBatch packs any boxes of a surface into frames the device accepts, whatever room the frame has left', async (t) => {
  const seed = propertySeed(9090);
  t.diagnostic(`fast-check seed ${seed}`);
  const { space } = offlineSpace();
  const bo = space.create(64 * 4096);
  const surface = new SurfaceResource(bo, 0, 1, { width: 128, height: 128, depth: 1, bytesPerPixel: 4, rowPitch: 2048 });
  const box = fc.record({ x: fc.nat(127), y: fc.nat(127), w: fc.integer({ min: 1, max: 128 }), h: fc.integer({ min: 1, max: 128 }) })
    .map(({ x, y, w, h }) => ({ x, y, w: Math.min(w, 128 - x), h: Math.min(h, 128 - y) }));
  fc.assert(fc.property(fc.array(box, { minLength: 1, maxLength: 12 }), fc.integer({ min: 200, max: 70_000 }), (boxes, frameBytes) => {
    const uploads: Upload[] = boxes.map((b) => ({ kind: 'box', res: surface, z: 0, d: 1, ...b }));
    const want = boxes.reduce((sum, b) => sum + b.w * b.h * 4, 0);
    let sent = 0;
    for (let frames = 0; uploads.length > 0; frames++) {
      assert.ok(frames < 10_000, 'fillBatch makes progress');
      const w = new DmaFrameWriter(new Uint8Array(frameBytes));
      const payload = fillBatch(w, uploads, { seq: 1, maxEntries: 1000, seen: 0, fence: 2 });
      const msg = decodeDriverFrame(w.finish());
      assert.ok(!(msg instanceof ProtocolError), String(msg));
      assert.ok(msg.op === 'writeSurface');
      assert.equal(msg.boxes.reduce((sum, b) => sum + b[6].length, 0), payload);
      sent += payload;
    }
    assert.equal(sent, want);
  }), { seed, numRuns: 300 });
});

test('hand-encoded writeSpans frames are standard MessagePack: the table, the data, and the codec when compressed', async () => {
  const { SpanFrameWriter } = await import('../../src/index.js');
  const { decodeSpanData, SpanTable } = await import('../../protocol/index.js');
  for (const codec of ['none', 'deflate'] as const) {
    const w = new SpanFrameWriter(new Uint8Array(1 << 16));
    w.beginWriteSpans(2 ** 32 + 3, 70_000, 4, 9);
    w.addSpan(100, 3, (b, at) => b.set([1, 2, 3], at));
    w.addSpan(103, 2, (b, at) => b.set([4, 5], at)); // adjacent: merged into one entry
    w.addSpan(8000, 4000, (b, at) => b.fill(7, at, at + 4000));
    const { frame, codecUsed } = w.finish(codec);
    assert.equal(codecUsed, codec);
    const msg = decodeDriverFrame(frame);
    assert.ok(!(msg instanceof ProtocolError) && msg.op === 'writeSpans', String(msg));
    assert.deepEqual([msg.seq, msg.bo, msg.seen, msg.fence, msg.codec ?? 'none'], [2 ** 32 + 3, 70_000, 4, 9, codec]);
    const table = new SpanTable(msg.spans);
    assert.deepEqual(Array.from({ length: table.count }, (_, i) => [table.offset(i), table.length(i)]), [[100, 5], [8000, 4000]]);
    const data = decodeSpanData(codec, msg.data, 4005);
    assert.ok(data instanceof Uint8Array);
    assert.deepEqual([...data.subarray(0, 6)], [1, 2, 3, 4, 5, 7]);
    const independent = decode(frame, { useBigInt64: false }) as Record<string, unknown>;
    assert.equal(independent['op'], 'writeSpans');
    if (codec === 'deflate') assert.ok(frame.length < 200, `compressed frame of ${frame.length} bytes`);
  }
});

test('a span frame keeps room for its table: room() shrinks with every entry, and a span past it is refused', async () => {
  const { SpanFrameWriter } = await import('../../src/index.js');
  const w = new SpanFrameWriter(new Uint8Array(4096));
  w.beginWriteSpans(1, 1, undefined, undefined);
  const r0 = w.room();
  w.addSpan(0, 10, () => {});
  w.addSpan(100, 10, () => {});
  assert.equal(w.room(), r0 - 20 - 2 * 8, "two entries more in the table");
  assert.throws(() => w.addSpan(5000, w.room() + 1, () => {}), RangeError);
  w.addSpan(5000, w.room(), () => {});
  const { frame } = w.finish('none');
  assert.ok(frame.length <= 4096);
  assert.ok(!(decodeDriverFrame(frame) instanceof ProtocolError));
});

test('one writer serves frame after frame (into()): a frame carries only its own entries, in its own buffer', async () => {
  const { SpanFrameWriter } = await import('../../src/index.js');
  const { SpanTable } = await import('../../protocol/index.js');
  const spans = new SpanFrameWriter(new Uint8Array(0));
  const first = new Uint8Array(1 << 16);
  spans.into(first).beginWriteSpans(1, 1, undefined, undefined);
  for (let i = 0; i < 600; i++) spans.addSpan(i * 20, 4, (b, at) => b.fill(1, at, at + 4)); // grows the table
  spans.finish('none');
  const second = new Uint8Array(1024);
  spans.into(second).beginWriteSpans(2, 5, undefined, 3);
  spans.addSpan(40, 2, (b, at) => b.set([8, 9], at));
  const { frame } = spans.finish('none');
  assert.equal(frame.buffer, second.buffer, 'written into the buffer given last');
  const msg = decodeDriverFrame(frame);
  assert.ok(!(msg instanceof ProtocolError) && msg.op === 'writeSpans', String(msg));
  assert.deepEqual([msg.seq, msg.bo, msg.fence, [...msg.data]], [2, 5, 3, [8, 9]]);
  const table = new SpanTable(msg.spans);
  assert.deepEqual([table.count, table.offset(0), table.length(0)], [1, 40, 2]);

  const dma = new DmaFrameWriter(new Uint8Array(0));
  dma.into(new Uint8Array(4096)).beginWrite(1, 1, undefined);
  dma.addRange(0, 8, (b, at) => b.fill(1, at, at + 8));
  dma.addRange(100, 8, (b, at) => b.fill(1, at, at + 8));
  dma.finish();
  dma.into(new Uint8Array(4096)).beginWrite(2, 7, undefined);
  dma.addRange(16, 2, (b, at) => b.set([3, 4], at));
  const w = decodeDriverFrame(dma.finish());
  assert.ok(!(w instanceof ProtocolError) && w.op === 'write', String(w));
  assert.deepEqual(w.ranges.map(([o, d]) => [o, [...d]]), [[16, [3, 4]]]);
});
