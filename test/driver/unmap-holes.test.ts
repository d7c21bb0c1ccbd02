// A mapping may span a hole in the device address space (the pgoff range of a destroyed BO):
// walks over a pgoff range must step over the hole, not stop at it, or the BOs after it lose
// what only their PTEs knew when the mapping goes away.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTIN_STRATEGIES, BUILTIN_STRATEGY_NAMES } from '../../src/index.js';
import { startTestRig } from '../../src/testing/index.js';
import { PS, strategySpace } from './strategy-fixtures.js';

test('BoSpace.forEachBoIn visits every BO of a pgoff range across holes, clamped to the range', () => {
  const s = strategySpace(BUILTIN_STRATEGIES.pagetable);
  const [a, b, c, d] = [s.bo(4).bo, s.bo(4).bo, s.bo(4).bo, s.bo(4).bo];
  s.space.destroy(b);
  s.space.destroy(c);
  const seen: Array<[number, number, number]> = [];
  s.space.forEachBoIn(2, 14, (bo, from, to) => seen.push([bo.id, from, to]));
  assert.deepEqual(seen, [[a.id, 2, 4], [d.id, 0, 2]]);
  assert.equal(s.space.boAt(5), null, 'a hole has no BO');
  assert.equal(s.space.boAtOrAfter(5), d, 'but the next BO after it');
  assert.equal(s.space.boAtOrAfter(16), null, 'nothing past the last BO');
});

for (const name of BUILTIN_STRATEGY_NAMES) {
  const strategy = BUILTIN_STRATEGIES[name];
  test(`${name}: munmap of a mapping over a hole keeps the writes of the BO after the hole`, () => {
    const s = strategySpace(strategy);
    const a = s.bo(4);
    const b = s.bo(4);
    const c = s.bo(4);
    s.space.destroy(b.bo); // pgoffs [4, 8) are a hole now
    const mm = s.machine.createMm();
    const vma = mm.mmap(s.space.mapping, { pgoff: a.bo.offset, pages: 12 }); // one VMA over a, the hole, c
    for (const t of [a.t, c.t]) t.mapped?.(vma);
    a.harvest();
    c.harvest(); // settle what a new mapping reports
    s.cpu.write8(mm, vma.start + (c.bo.offset + 1) * PS, 0x77); // c's page 1
    s.cpu.write8(mm, vma.start + 2 * PS, 0x11); // a's page 2
    mm.munmap(vma.start, 12 * PS);
    const fromC = c.harvest();
    assert.ok(fromC.includes(1), `c's written page 1 is kept (got [${fromC}])`);
    assert.ok(a.harvest().includes(2), 'and a\'s page 2 before the hole');
  });
}

test('a driver keeps a BO coherent after a munmap of a mapping spanning a destroyed BO', async () => {
  const rig = await startTestRig({ driver: { strategy: BUILTIN_STRATEGIES.pagetable, capacityPages: 64 } });
  try {
    const d = rig.driver;
    const [a, b, c] = [d.createBo(4 * PS), d.createBo(4 * PS), d.createBo(4 * PS)];
    for (const bo of [a, b, c]) d.createBufferResource(bo);
    d.destroyBo(b);
    const vma = rig.mm.mmap(d.space.mapping, { pgoff: 0, pages: 12 });
    await d.flush();
    rig.machine.cpus[0]!.write8(rig.mm, vma.start + 9 * PS, 0x77);
    rig.mm.munmap(vma.start, 12 * PS);
    assert.deepEqual(await d.verifyCoherent(c).then((r) => r.differing), []);
  } finally {
    await rig.close();
  }
});
