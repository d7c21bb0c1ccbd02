import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameSeries, RollingPercentiles } from '../../src/ui/index.js';

const columns = [
  { name: 'frame', merge: 'first' as const },
  { name: 'pages', merge: 'mean' as const },
  { name: 'latency', merge: 'max' as const },
  { name: 'errors', merge: 'sum' as const },
  { name: 'method', merge: 'last' as const },
];

test('recent rows are fetched by sequence number; a reader that fell behind skips to the oldest row still held', () => {
  const s = new FrameSeries(columns, 64, 4);
  for (let f = 0; f < 6; f++) s.append([f, f * 10, f, 0, f % 2]);
  const all = s.since(0);
  assert.equal(all.from, 2, 'only the last 4 rows are held');
  assert.equal(all.to, 6);
  assert.deepEqual(all.columns.values[0], [2, 3, 4, 5]);
  const tail = s.since(5);
  assert.deepEqual(tail.columns.values[1], [50]);
  assert.deepEqual(s.since(6).columns.values[0], [], 'nothing new');
  assert.throws(() => s.append([1, 2]), RangeError);
});

test('the history halves its resolution when full, by each column\'s rule, and still covers the whole run', () => {
  const s = new FrameSeries(columns, 4, 16);
  const rows: Array<[number, number, number | null, number, number]> = [
    [0, 10, 1, 0, 0], [1, 20, null, 1, 1], [2, 30, 5, 0, 1], [3, 40, 2, 1, 0], [4, 50, 3, 0, 1],
  ];
  for (const r of rows) s.append(r);
  const h = s.all();
  // 4 rows held, the 5th forced a halving: [0+1], [2+3], then row 4 alone.
  assert.deepEqual(h.frames, [2, 2, 1]);
  assert.deepEqual(h.values[0], [0, 2, 4], 'first frame of each bucket');
  assert.deepEqual(h.values[1], [15, 35, 50], 'per-frame mean');
  assert.deepEqual(h.values[2], [1, 5, 3], 'max, a missing value ignored');
  assert.deepEqual(h.values[3], [1, 1, 0], 'events summed');
  assert.deepEqual(h.values[4], [1, 0, 1], 'the later state');
  for (let f = 5; f < 9; f++) s.append([f, 60, 1, 0, 0]);
  const h2 = s.all();
  assert.equal(h2.frames.reduce((a, b) => a + b, 0), 9, 'every frame is still counted');
  assert.ok(h2.frames.length <= 4);
  // Means weigh by frames: the first bucket now holds frames 0..5, whose values were 10..60.
  assert.deepEqual(h2.frames, [6, 2, 1]);
  assert.equal(h2.values[1]![0], 35);
});

test('rolling percentiles use the summary\'s nearest rank over the last N values', () => {
  const r = new RollingPercentiles(4);
  assert.deepEqual(r.get(50, 99), [null, null]);
  for (const v of [100, 1, 2, 3, 4]) r.add(v);
  assert.deepEqual(r.get(50, 99), [2, 4], 'the 100 fell out of the window');
});
