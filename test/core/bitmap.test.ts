import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Bitmap } from '../../src/index.js';
import { propertySeed } from './fixtures.js';

test('bitmap set/clear ranges and find-next agree with a plain boolean array', (t) => {
  const seed = propertySeed(1);
  t.diagnostic(`fast-check seed ${seed}`);
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 200 }),
      fc.array(fc.tuple(fc.boolean(), fc.nat(199), fc.nat(199)), { maxLength: 20 }),
      (size, ops) => {
        const b = new Bitmap(size);
        const ref = new Array<boolean>(size).fill(false);
        for (const [set, x, y] of ops) {
          const from = Math.min(x, y) % (size + 1);
          const to = Math.min(Math.max(x, y), size);
          if (from > to) continue;
          if (set) b.setRange(from, to); else b.clearRange(from, to);
          for (let i = from; i < to; i++) ref[i] = set;
        }
        assert.deepEqual(b.toArray(), ref.flatMap((v, i) => (v ? [i] : [])));
        assert.equal(b.count(), ref.filter(Boolean).length);
        for (let i = 0; i < size; i += 7) {
          const ns = ref.indexOf(true, i);
          const nc = ref.indexOf(false, i);
          assert.equal(b.findNextSet(i), ns < 0 ? size : ns);
          assert.equal(b.findNextClear(i), nc < 0 ? size : nc);
        }
        const runs: Array<[number, number]> = [];
        for (let i = 0; i < size; i++) {
          if (ref[i] && (i === 0 || !ref[i - 1])) runs.push([i, i + 1]);
          else if (ref[i]) runs[runs.length - 1]![1] = i + 1;
        }
        assert.deepEqual(b.runs(), runs);
      },
    ),
    { seed, numRuns: 300 },
  );
});
