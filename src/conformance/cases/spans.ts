// §6.15 writeSpans: a span table and the spans' bytes back to back, raw or compressed (feature
// deflate). Every check that rejects a frame also checks that nothing of it was written.
import { deflateRawSync } from 'node:zlib';
import { encodeSpanTable } from '../../../protocol/index.js';
import { applied, check, NotApplicable, pattern, readBytes, refused, same, type Case, type Ctx } from '../case.js';
import type { WireClient } from '../client.js';

const SIZE = 8192;

/** A session with BO 1 of SIZE bytes holding pattern 3, and a function that checks it still does. */
async function filledBo(t: Ctx): Promise<{ c: WireClient; content: Uint8Array; unchanged: (what: string) => Promise<void> }> {
  const c = await t.session();
  const content = pattern(SIZE, 3);
  await applied(c, { op: 'defineBo', bo: 1, size: SIZE }, { op: 'write', bo: 1, ranges: [[0, content]] });
  return { c, content, unchanged: async (what) => same(await readBytes(c, 1, 0, SIZE), content, `BO bytes after ${what}`) };
}

/** A writeSpans frame for BO 1 from [offset, bytes] pairs (raw data unless `data` is given). */
function spansFrame(spans: Array<[number, Uint8Array]>, extra: Record<string, unknown> = {}): Record<string, unknown> & { op: string } {
  return {
    op: 'writeSpans', bo: 1,
    spans: encodeSpanTable(spans.map(([offset, bytes]) => [offset, bytes.length])),
    data: Buffer.concat(spans.map(([, bytes]) => bytes)),
    ...extra,
  };
}

/** What BO bytes `content` become after writing `spans` in order. */
function written(content: Uint8Array, spans: Array<[number, Uint8Array]>): Uint8Array {
  const out = content.slice();
  for (const [offset, bytes] of spans) out.set(bytes, offset);
  return out;
}

const SPANS: Array<[number, Uint8Array]> = [
  [16, pattern(100, 9)],
  [4000, pattern(300, 10)], // across the page boundary
  [50, pattern(20, 11)], // overlaps the first: the later span wins
  [SIZE - 5, pattern(5, 12)], // ends at the BO's end
  [200, new Uint8Array(0)], // empty
];

export const spanCases: Case[] = [
  {
    id: 'spans.apply',
    section: '6.15',
    title: 'writeSpans copies each span at its offset in table order (a later span wins); bytes outside the spans are untouched',
    needs: ['writeSpans'],
    async run(t) {
      const { c, content } = await filledBo(t);
      await applied(c, spansFrame(SPANS));
      same(await readBytes(c, 1, 0, SIZE), written(content, SPANS), 'BO bytes after writeSpans');
      await applied(c, spansFrame([])); // an empty table is a valid no-op
      same(await readBytes(c, 1, 0, SIZE), written(content, SPANS), 'BO bytes after an empty writeSpans');
    },
  },
  {
    id: 'spans.fence',
    section: '6.15',
    title: 'a fence carried by writeSpans is signalled right after it, also when it is rejected',
    needs: ['writeSpans', 'fencedWrite'],
    async run(t) {
      const { c, content } = await filledBo(t);
      const seq = c.cmd(spansFrame([[0, pattern(10, 1)]], { fence: 70 }));
      const s = await c.expect('signaled', seq);
      same([s.fence, s.ok], [70, true], 'the signal of the carried fence');
      same(await readBytes(c, 1, 0, 10), pattern(10, 1), 'the data of the frame');
      const bad = c.cmd(spansFrame([[SIZE, Uint8Array.of(1)]], { fence: 71 }));
      const e = await c.expect('error', bad);
      same(e.code, 'out_of_range', 'the rejected frame\'s error');
      const s2 = await c.expect('signaled', bad);
      same([s2.fence, s2.ok, s2.errSeq], [71, false, bad], 'the signal of the rejected frame\'s fence');
      same(await readBytes(c, 1, 10, SIZE - 10), content.subarray(10), 'the bytes after');
    },
  },
  {
    id: 'spans.atomic',
    section: '6.15',
    title: 'a writeSpans with one span outside the BO is out_of_range and writes none of its spans',
    needs: ['writeSpans'],
    async run(t) {
      const { c, unchanged } = await filledBo(t);
      await refused(c, spansFrame([[0, pattern(64, 1)], [SIZE - 2, pattern(3, 2)]]), 'out_of_range');
      await refused(c, spansFrame([[0, pattern(64, 1)]], { spans: encodeSpanTable([[0, 64], [0xffff_ffff, 1]]) }), 'out_of_range');
      await unchanged('rejected writeSpans');
    },
  },
  {
    id: 'spans.shape',
    section: '6.15',
    title: 'a table that is not whole 8-byte entries, or data of another length than the spans, is a bad message that writes nothing',
    needs: ['writeSpans'],
    async run(t) {
      const { c, unchanged } = await filledBo(t);
      await refused(c, spansFrame([[0, pattern(8, 1)]], { spans: encodeSpanTable([[0, 8]]).subarray(0, 7) }), 'bad_message');
      await refused(c, spansFrame([[0, pattern(8, 1)]], { data: pattern(7, 1) }), 'bad_message');
      await refused(c, spansFrame([[0, pattern(8, 1)]], { data: pattern(9, 1) }), 'bad_message');
      await refused(c, spansFrame([[0, pattern(8, 1)]], { spans: 'not bin' }), 'bad_message');
      await refused(c, spansFrame([[0, pattern(8, 1)]], { codec: 'zstd-of-the-future' }), 'bad_message');
      await unchanged('malformed writeSpans');
    },
  },
  {
    id: 'spans.limits',
    section: '6.15',
    title: 'more than maxRanges spans, or spans of more than maxMessageSize bytes in all, is a limit error that writes nothing',
    needs: ['writeSpans'],
    async run(t) {
      const { c, unchanged } = await filledBo(t);
      const { maxRanges, maxMessageSize } = t.welcome;
      if ((maxRanges + 1) * 8 + 64 >= maxMessageSize) throw new NotApplicable(`maxRanges ${maxRanges} spans do not fit one message`);
      const many = Array.from({ length: maxRanges + 1 }, (_, i): [number, number] => [i % SIZE, 0]);
      await refused(c, { op: 'writeSpans', bo: 1, spans: encodeSpanTable(many), data: new Uint8Array(0) }, 'limit');
      // Spans may overlap, so a few whole-BO spans add up to more than a message holds.
      const count = Math.floor(maxMessageSize / SIZE) + 1;
      if (count > maxRanges) throw new NotApplicable(`${count} spans of ${SIZE} bytes exceed maxRanges ${maxRanges}`);
      const huge = Array.from({ length: count }, (): [number, number] => [0, SIZE]);
      await refused(c, { op: 'writeSpans', bo: 1, spans: encodeSpanTable(huge), data: new Uint8Array(0) }, 'limit');
      await unchanged('writeSpans over the limits');
    },
  },
  {
    id: 'spans.deflate',
    section: '6.15',
    title: 'codec deflate: the raw DEFLATE stream of the spans\' bytes is applied like raw data',
    needs: ['writeSpans', 'deflate'],
    async run(t) {
      const { c, content } = await filledBo(t);
      const plain = spansFrame(SPANS);
      await applied(c, { ...plain, codec: 'deflate', data: deflateRawSync(plain.data as Uint8Array) });
      same(await readBytes(c, 1, 0, SIZE), written(content, SPANS), 'BO bytes after a compressed writeSpans');
      const other: Array<[number, Uint8Array]> = [[1000, new Uint8Array(3000).fill(7)]];
      await applied(c, { ...spansFrame(other), codec: 'deflate', data: deflateRawSync(new Uint8Array(3000).fill(7), { level: 9 }) });
      same(await readBytes(c, 1, 0, SIZE), written(written(content, SPANS), other), 'BO bytes after a second one (any level)');
      await applied(c, { ...spansFrame(other), codec: 'none' }); // 'none' is raw data
    },
  },
  {
    id: 'spans.deflate-bad',
    section: '6.15',
    title: 'codec deflate: a corrupt stream, or one that decodes to more or fewer bytes than the spans, is a bad message that writes nothing',
    needs: ['writeSpans', 'deflate'],
    async run(t) {
      const { c, unchanged } = await filledBo(t);
      const spans = encodeSpanTable([[0, 64]]);
      await refused(c, { op: 'writeSpans', bo: 1, spans, codec: 'deflate', data: Uint8Array.of(0xff, 0xff, 0xff, 0xff) }, 'bad_message');
      await refused(c, { op: 'writeSpans', bo: 1, spans, codec: 'deflate', data: deflateRawSync(new Uint8Array(63)) }, 'bad_message');
      // A small stream that decodes to 64 MiB must not be decoded in full: it is 64 bytes too many already.
      const bomb = deflateRawSync(new Uint8Array(64 << 20), { level: 9 });
      check(bomb.length < t.welcome.maxMessageSize, 'the test stream fits a message');
      await refused(c, { op: 'writeSpans', bo: 1, spans, codec: 'deflate', data: bomb }, 'bad_message');
      await unchanged('bad compressed writeSpans');
    },
  },
  {
    id: 'spans.deflate-unannounced',
    section: '6.15',
    title: 'a device with writeSpans but without deflate answers codec deflate with bad_message and writes nothing',
    needs: ['writeSpans'],
    async run(t) {
      if (t.offers('deflate')) throw new NotApplicable('the device announces deflate');
      const { c, unchanged } = await filledBo(t);
      await refused(c, { ...spansFrame([[0, pattern(64, 1)]]), codec: 'deflate', data: deflateRawSync(pattern(64, 1)) }, 'bad_message');
      await unchanged('writeSpans with an unannounced codec');
    },
  },
];
