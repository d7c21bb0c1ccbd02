// State hashing must identify states, not executions: per-execution identities
// (mm ids grow with every machine) may not leak into keys, and every part of
// the state a future can depend on must.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PTE_WRITE } from '../../src/index.js';
import { StateHasher, World, WorldView, buildScenario } from '../../src/check/index.js';

function key(view: WorldView): number {
  const h = new StateHasher();
  h.begin();
  view.hashInto(h);
  return h.key();
}

test('two fresh worlds hash alike although their mm ids differ', () => {
  for (const options of [{}, { arch: 'vivt' as const }, { privateVma: true }]) {
    const a = new World(buildScenario(options));
    const b = new World(buildScenario(options));
    assert.notEqual(a.shared.mm.id, b.shared.mm.id);
    assert.equal(key(new WorldView(a)), key(new WorldView(b)), JSON.stringify(options));
  }
});

test('PTEs, TLB entries, cache lines, memory, oracle and device copy each change the hash', () => {
  for (const arch of ['x86', 'vivt'] as const) {
    const w = new World(buildScenario({ arch }));
    const view = new WorldView(w);
    const seen = new Set([key(view)]);
    const changed = (what: string): void => {
      const k = key(view);
      assert.ok(!seen.has(k), `${arch}: ${what} changed nothing`);
      seen.add(k);
    };
    const cpu = w.machine.cpus[0]!;
    cpu.read8(w.shared.mm, w.shared.start);
    changed('a read fault (PTEs + TLB fill)');
    w.write({ kind: 'write', cpu: 0, pgoff: 0, offset: 0, value: 9 });
    changed('a write (D bit, TLB entry, data or cache line, oracle)');
    w.copyToDevice(1);
    if (arch === 'vivt') {
      w.flushAllCaches();
      changed('a cache write-back');
      w.copyToDevice(1);
    }
    changed('a device copy');
    const vpn = w.vpnOf(w.shared, 0);
    w.shared.mm.writePte(vpn, w.shared.mm.readPte(vpn) & ~PTE_WRITE);
    changed('a PTE write-protect');
    w.machine.flushTlbPage(w.shared.mm, w.shared.start);
    changed('a TLB flush');
  }
});
