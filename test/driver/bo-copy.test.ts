// Bo.copyOut / copyIn go run by run over memory that is contiguous (one copy per run, not per
// page). Frames freed by a destroyed BO come back in reverse order, so a BO created after it
// has runs that break and go backwards: the copies must still be the page-by-page bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BUILTIN_STRATEGIES, Machine } from '../../src/index.js';
import { propertySeed } from '../core/fixtures.js';
import { PS, strategySpace } from './strategy-fixtures.js';

test('Mapping.frameRun: the longest run of consecutive frames, clamped, null without a frame', () => {
  const machine = new Machine({ cpus: 1, memoryBytes: 64 * PS });
  const m = machine.createMapping(16, { populate: false });
  assert.equal(m.frameRun(0, 4), null, 'no frame yet');
  m.populate(0, 8);
  const run = m.frameRun(2, 100)!;
  assert.equal(run.length, 6 * PS, 'clamped to the frames that are there (pgoffs 2..7)');
  assert.equal(run.byteOffset, m.pfnAt(2) * PS);
  assert.equal(m.frameRun(2, 3)!.length, 3 * PS, 'clamped to maxPages');
  assert.equal(m.frameRun(2, 0)!.length, PS, 'at least one page');
  m.release(4, 1);
  m.populate(4, 1); // the freed frame comes back: still consecutive
  assert.equal(m.frameRun(0, 8)!.length, 8 * PS);
  m.release(1, 2);
  m.populate(8, 2); // pgoffs 8, 9 take frames 2 and 1 (the free stack): runs of one
  assert.equal(m.pfnAt(8), m.pfnAt(0) + 2);
  assert.equal(m.frameRun(8, 2)!.length, PS, 'frames 2, 1 are not a run');
  assert.equal(m.frameRun(0, 8)!.length, PS, 'pgoff 1 has no frame');
});

test('Bo.copyOut / copyIn over fragmented frames equal the page-by-page bytes (property)', (t) => {
  const seed = propertySeed(1402);
  t.diagnostic(`fast-check seed ${seed} (set VGPU_SEED to replay another)`);
  const scenario = fc.record({
    sizes: fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 6 }),
    destroy: fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
    last: fc.integer({ min: 1, max: 24 }),
    from: fc.nat(),
    len: fc.nat(),
    fill: fc.integer({ min: 1, max: 255 }),
  });
  fc.assert(fc.property(scenario, ({ sizes, destroy, last, from, len, fill }) => {
    const s = strategySpace(BUILTIN_STRATEGIES.pagetable);
    const made = sizes.map((pages) => s.space.create(pages * PS));
    made.forEach((bo, i) => destroy[i] && s.space.destroy(bo));
    const bo = s.space.create(last * PS - 100); // a partial last page too
    for (let p = 0; p < bo.pages; p++) bo.page(p).fill((p * 7 + 1) & 0xff);
    const at = from % bo.size;
    const n = len % (bo.size - at + 1);
    const expected = new Uint8Array(n);
    for (let i = 0; i < n; i++) expected[i] = bo.page(Math.floor((at + i) / PS))[(at + i) % PS]!;
    const out = new Uint8Array(n + 3).fill(0xee);
    bo.copyOut(at, out, 2, n);
    assert.deepEqual(out.subarray(2, 2 + n), expected);
    assert.equal(out[1], 0xee, 'nothing before dstOffset');
    assert.equal(out[2 + n], 0xee, 'nothing after the copy');
    bo.copyIn(at, new Uint8Array(n).fill(fill));
    for (let i = 0; i < bo.size; i++) {
      const want = i >= at && i < at + n ? fill : (Math.floor(i / PS) * 7 + 1) & 0xff;
      if (bo.page(Math.floor(i / PS))[i % PS] !== want) assert.fail(`byte ${i}: ${bo.page(Math.floor(i / PS))[i % PS]} !== ${want}`);
    }
  }), { seed, numRuns: 120 });
});
