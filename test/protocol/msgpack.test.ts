import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encode as independentEncode } from '@msgpack/msgpack';
import fc from 'fast-check';
import { decodeStrict, MalformedError, MAX_DEPTH } from '../../protocol/index.js';

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

/** Compare decoded values with bins as plain Uint8Array contents. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return [...v];
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

describe('strict MessagePack decoder', () => {
  it('decodes every format the protocol allows', () => {
    const cases: [number[], unknown][] = [
      [[0x00], 0], [[0x7f], 127], [[0xff], -1], [[0xe0], -32],
      [[0xcc, 0xff], 255], [[0xcd, 0x01, 0x00], 256], [[0xce, 0xff, 0xff, 0xff, 0xff], 2 ** 32 - 1],
      [[0xcf, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 2 ** 53 - 1],
      [[0xd0, 0x80], -128], [[0xd1, 0x80, 0x00], -32768], [[0xd2, 0x80, 0, 0, 0], -(2 ** 31)],
      [[0xd3, 0, 0, 0, 1, 0, 0, 0, 0], 2 ** 32], [[0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe], -2],
      [[0xca, 0x3f, 0x80, 0, 0], 1], [[0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0], 1.5],
      [[0xc0], null], [[0xc2], false], [[0xc3], true],
      [[0xa2, 0x68, 0x69], 'hi'], [[0xd9, 0x03, 0xc3, 0xa9, 0x21], 'é!'], [[0xda, 0, 1, 0x41], 'A'], [[0xdb, 0, 0, 0, 1, 0x42], 'B'],
      [[0xc4, 2, 1, 2], [1, 2]], [[0xc5, 0, 1, 9], [9]], [[0xc6, 0, 0, 0, 0], []],
      [[0x92, 0x01, 0x02], [1, 2]], [[0xdc, 0, 1, 0xc0], [null]], [[0xdd, 0, 0, 0, 0], []],
      [[0x81, 0xa1, 0x61, 0x01], { a: 1 }], [[0xde, 0, 1, 0xa1, 0x62, 0x02], { b: 2 }], [[0xdf, 0, 0, 0, 0], {}],
    ];
    for (const [input, want] of cases) {
      const d = decodeStrict(Uint8Array.from(input));
      assert.deepEqual([plain(d.value), d.problem], [want, undefined], Buffer.from(input).toString('hex'));
    }
  });

  it('bins are views of the frame, not copies', () => {
    const frame = bytes(0xc4, 2, 7, 8);
    const v = decodeStrict(frame).value as Uint8Array;
    assert.equal(v.buffer, frame.buffer);
  });

  it('rejects malformed frames: empty, truncated, trailing, 0xc1 anywhere, every extension type, bad UTF-8, lying lengths', () => {
    const cases: Record<string, number[]> = {
      empty: [],
      truncatedMap: [0x82, 0xa2, 0x6f, 0x70],
      truncatedU32: [0xce, 0, 0],
      trailing: [0x01, 0x02],
      reserved: [0xc1],
      reservedNested: [0x91, 0x92, 0x01, 0xc1],
      reservedAsKey: [0x81, 0xc1, 0x01],
      fixext1: [0xd4, 0x05, 0x01], fixext2: [0xd5, 1, 0, 0], fixext4: [0xd6, 0xff, 0, 0, 0, 1], fixext8: [0xd7, 1, 0, 0, 0, 0, 0, 0, 0, 0],
      fixext16: [0xd8, 1, ...new Array(16).fill(0)], ext8: [0xc7, 1, 5, 0], ext16: [0xc8, 0, 1, 5, 0], ext32: [0xc9, 0, 0, 0, 1, 5, 0],
      extNested: [0x81, 0xa1, 0x61, 0xd4, 0x01, 0x00],
      badUtf8: [0xa2, 0xc3, 0x28],
      badUtf8Long: [0xd9, 70, ...new Array(69).fill(0x61), 0xff],
      arrayLies: [0xdd, 0xff, 0xff, 0xff, 0xff, 0x01],
      mapLies: [0xdf, 0x7f, 0xff, 0xff, 0xff],
      binLies: [0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00],
      deepTruncated: [...new Array(MAX_DEPTH + 5).fill(0x91)],
      deepReserved: [...new Array(MAX_DEPTH + 5).fill(0x91), 0xc1],
      deepExtension: [...new Array(MAX_DEPTH + 5).fill(0x91), 0xd4, 1, 1],
    };
    for (const [name, input] of Object.entries(cases)) {
      assert.throws(() => decodeStrict(Uint8Array.from(input)), MalformedError, name);
    }
  });

  it('reports shape problems and still decodes what it can: non-str keys, repeated keys, nesting beyond the limit', () => {
    const nonStrKey = decodeStrict(bytes(0x82, 0xa2, 0x6f, 0x70, 0xa1, 0x78, 0x07, 0x01));
    assert.deepEqual([nonStrKey.value, nonStrKey.problem], [{ op: 'x' }, 'map key at byte 6 is not a str']);
    const repeated = decodeStrict(bytes(0x82, 0xa1, 0x61, 0x01, 0xa1, 0x61, 0x02));
    assert.deepEqual([repeated.value, repeated.problem], [{ a: 1 }, "key 'a' appears twice in one map"]);
    const depth = (n: number): Uint8Array => Uint8Array.from([...new Array(n).fill(0x91), 0xc0]);
    assert.equal(decodeStrict(depth(MAX_DEPTH)).problem, undefined);
    assert.equal(decodeStrict(depth(MAX_DEPTH + 1)).problem, `nesting deeper than ${MAX_DEPTH} levels`);
    const deep = decodeStrict(depth(100_000)); // no stack overflow: skipped iteratively
    assert.equal(deep.problem, `nesting deeper than ${MAX_DEPTH} levels`);
    const mixed = decodeStrict(Uint8Array.from([0x82, 0xa1, 0x61, ...new Array(20).fill(0x91), 0x81, 0x01, 0x02, 0xa1, 0x62, 0x03]));
    assert.deepEqual(mixed.value, { a: [[[[[[[null]]]]]]], b: 3 });
  });

  it('never turns __proto__ into a prototype', () => {
    const d = decodeStrict(Uint8Array.from([0x82, 0xa9, ...Buffer.from('__proto__'), 0x81, 0xa1, 0x78, 0x01, 0xa1, 0x61, 0x02]));
    assert.equal(Object.getPrototypeOf(d.value), Object.prototype);
    assert.deepEqual(d.value, { a: 2 });
  });

  it('agrees with an independent implementation on random values of the protocol\'s types', () => {
    const value = fc.letrec((tie) => ({
      v: fc.oneof(
        { depthSize: 'small', maxDepth: 6 },
        fc.constant(null), fc.boolean(), fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }), fc.maxSafeNat(),
        fc.string(), fc.uint8Array({ maxLength: 40 }), fc.array(tie('v'), { maxLength: 5 }),
        fc.dictionary(fc.string().filter((k) => k !== '__proto__'), tie('v'), { maxKeys: 5 }),
      ),
    })).v;
    fc.assert(
      fc.property(value, (v) => {
        const d = decodeStrict(independentEncode(v));
        assert.equal(d.problem, undefined);
        assert.deepEqual(plain(d.value), plain(v));
      }),
      { numRuns: 500, seed: 10 },
    );
  });

  it('never throws anything but MalformedError on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        try {
          decodeStrict(b);
        } catch (e) {
          assert.ok(e instanceof MalformedError, String(e));
        }
      }),
      { numRuns: 3000, seed: 11 },
    );
  });
});
