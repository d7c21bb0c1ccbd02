// §2 encoding: what a receiver accepts, what is malformed (close 1007), what is a bad message.
import { MAX_DEPTH } from '../../../protocol/index.js';
import { bin, cat, fixarray, int, map, nested, str, type Bytes } from '../bytes.js';
import { applied, expectError, expectFatal, readBytes, rejected, same, type Case, type Ctx } from '../case.js';

/** A fresh session, a frame sent raw: the device answers malformed and closes 1007. */
function malformed(id: string, title: string, frame: (seq: number) => Bytes): Case {
  return {
    id,
    section: '2',
    title: `${title}: malformed, close 1007`,
    async run(t) {
      const c = await t.session();
      c.sendRaw(frame(1));
      await expectFatal(c, 'malformed', 1007);
    },
  };
}

/** A fresh session, a frame sent raw that must be a bad message for seq 1; the session lives on. */
function badMessage(id: string, title: string, frame: Bytes, seq: number | undefined): Case {
  return {
    id,
    section: '2',
    title: `${title}: bad_message, the connection stays`,
    async run(t) {
      const c = await t.session();
      c.sendRaw(frame);
      c.seq = Math.max(c.seq, seq ?? 0);
      await expectError(c, 'bad_message', seq);
      const s = await c.fence();
      same([s.ok, s.errors], [false, 1], 'the fence after it');
    },
  };
}

const stats1 = (extra: Bytes[] = []): Bytes => cat([0x80 | (2 + extra.length / 2)], str('op'), str('stats'), str('seq'), int(1, 'fix'), ...extra);

export const encodingCases: Case[] = [
  {
    id: 'enc.int-formats',
    section: '2',
    title: 'every int format is accepted for a uint field',
    async run(t: Ctx) {
      const c = await t.session();
      const formats = ['fix', 'u8', 'u16', 'u32', 'u64', 'i8', 'i16', 'i32', 'i64'] as const;
      let seq = 0;
      for (const [i, f] of formats.entries()) {
        seq++;
        const size = f === 'fix' ? 100 : 100 + i;
        c.sendRaw(map([['op', str('defineBo')], ['seq', int(seq, f)], ['bo', int(i + 1, f)], ['size', int(size, f)]]));
      }
      c.seq = seq;
      await applied(c);
      for (const [i, f] of formats.entries()) {
        const size = f === 'fix' ? 100 : 100 + i;
        same((await readBytes(c, i + 1, 0, size)).length, size, `BO defined with ${f} ints`);
      }
    },
  },
  {
    id: 'enc.seq-64bit',
    section: '4',
    title: 'a seq ≥ 2^32 (64-bit int) and up to 2^53−1 is accepted and echoed',
    async run(t) {
      const c = await t.session();
      for (const seq of [2 ** 32, 2 ** 40 + 3, 2 ** 53 - 1]) {
        c.sendRaw(map([['op', str('ping')], ['seq', int(seq, 'u64')]]));
        same(await c.next(), { op: 'pong', seq }, `pong for seq ${seq}`);
      }
    },
  },
  {
    id: 'enc.not-a-map',
    section: '2',
    title: 'a frame that is not a map is a bad message without seq',
    async run(t) {
      const c = await t.session();
      c.sendRaw(cat(fixarray(2), str('stats'), int(1, 'fix')));
      await expectError(c, 'bad_message', undefined);
      same((await c.fence()).errSeq, undefined, 'errSeq of a failure without seq');
    },
  },
  malformed('enc.truncated', 'a truncated frame', () => map([['op', str('stats')], ['seq', int(1, 'fix')]]).subarray(0, 9)),
  malformed('enc.trailing', 'a frame with bytes after the value', () => cat(map([['op', str('stats')], ['seq', int(1, 'fix')]]), [0xc0])),
  malformed('enc.reserved-byte', 'the reserved byte 0xc1 as a value', () => Uint8Array.of(0xc1)),
  malformed('enc.reserved-nested', 'the reserved byte 0xc1 nested inside a map', () =>
    map([['op', str('write')], ['seq', int(1, 'fix')], ['bo', int(1, 'fix')], ['ranges', cat(fixarray(1), fixarray(2), [0xc1], bin(Uint8Array.of(1)))]])),
  malformed('enc.extension', 'an extension type (timestamp) in a field', () =>
    map([['op', str('stats')], ['seq', cat([0xd6, 0xff], [0, 0, 0, 1])]])),
  malformed('enc.extension-unknown-key', 'an extension type under an unknown key', () =>
    map([['op', str('stats')], ['seq', int(1, 'fix')], ['x', cat([0xd4, 0x01, 0x00])]])),
  malformed('enc.bad-utf8', 'a str that is not UTF-8', () => cat([0x82], str('op'), [0xa5, 0x73, 0x74, 0xff, 0x74, 0x73], str('seq'), int(1, 'fix'))),
  badMessage('enc.non-str-key', 'a map key that is not a str', stats1([int(7, 'fix'), int(1, 'fix')]), 1),
  badMessage('enc.repeated-key', 'a key given twice in one map', cat([0x83], str('op'), str('stats'), str('seq'), int(1, 'fix'), str('op'), str('ping')), 1),
  badMessage(
    'enc.deep-nesting',
    `20000 nested arrays (the limit is ${MAX_DEPTH} levels)`,
    map([['op', str('write')], ['seq', int(1, 'fix')], ['bo', int(1, 'fix')], ['ranges', nested(20_000)]]),
    1,
  ),
  {
    id: 'enc.depth-limit',
    section: '2',
    title: `nesting up to ${MAX_DEPTH} levels decodes (an unknown key holding it is ignored), one more is a bad message`,
    async run(t) {
      const c = await t.session();
      // The top-level map is level 1, so the unknown key may hold MAX_DEPTH − 1 nested arrays.
      c.sendRaw(map([['op', str('ping')], ['seq', int(1, 'fix')], ['x', nested(MAX_DEPTH - 1)]]));
      same(await c.next(), { op: 'pong', seq: 1 }, `reply to a ping nested ${MAX_DEPTH} deep`);
      c.sendRaw(map([['op', str('stats')], ['seq', int(2, 'fix')], ['x', nested(MAX_DEPTH)]]));
      c.seq = 2;
      await expectError(c, 'bad_message', 2);
    },
  },
  {
    id: 'enc.unknown-keys',
    section: '2',
    title: 'keys a receiver does not know are ignored',
    async run(t) {
      const c = await t.session();
      await applied(c, { op: 'defineBo', bo: 1, size: 16, colour: 'blue', extra: { a: [1, 2] } }, { op: 'write', bo: 1, ranges: [[0, Uint8Array.of(9)]], note: 'x' });
      same(await readBytes(c, 1, 0, 1), Uint8Array.of(9), 'byte written by a frame with extra keys');
    },
  },
  {
    id: 'enc.nil-optional',
    section: '2',
    title: 'nil in an optional field means absent',
    async run(t) {
      const c = await t.session();
      await applied(c, { op: 'defineBo', bo: 1, size: 16 }, { op: 'write', bo: 1, ranges: [[0, Uint8Array.of(3)]], seen: null, fence: null });
      same(await readBytes(c, 1, 0, 1), Uint8Array.of(3), 'byte written by a frame with nil optional fields');
    },
  },
  {
    id: 'enc.bin-required',
    section: '2',
    title: 'binary data as str or as an array of ints is a bad message',
    async run(t) {
      const c = await t.session();
      await applied(c, { op: 'defineBo', bo: 1, size: 16 });
      await rejected(c, { op: 'write', bo: 1, ranges: [[0, 'abc']] }, 'bad_message');
      await rejected(c, { op: 'write', bo: 1, ranges: [[0, [1, 2, 3]]] }, 'bad_message');
      same(await readBytes(c, 1, 0, 3), new Uint8Array(3), 'BO bytes after the rejected writes');
    },
  },
  {
    id: 'enc.negative-and-fraction',
    section: '2',
    title: 'a negative or fractional number where a uint belongs is a bad message',
    async run(t) {
      const c = await t.session();
      await rejected(c, { op: 'defineBo', bo: -1, size: 16 }, 'bad_message');
      await rejected(c, { op: 'defineBo', bo: 1, size: 16.5 }, 'bad_message');
      await rejected(c, { op: 'defineBo', bo: 2 ** 32, size: 16 }, 'bad_message');
    },
  },
];
