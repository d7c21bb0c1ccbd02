// State hashing must identify states, not executions: per-execution identities
// (mm ids grow with every machine) may not leak into keys, and every part of
// the state a future can depend on must.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bitmap, PTE_WRITE, VM_SOFTDIRTY } from '../../src/index.js';
import { StateHasher, World, WorldView, buildScenario } from '../../src/check/index.js';

function key(view: WorldView): number {
  const h = new StateHasher();
  h.begin();
  view.hashInto(h);
  return h.key();
}

test('two fresh worlds hash alike although their mm ids differ', () => {
  for (const options of [{}, { arch: 'vivt' as const }, { privateVma: true }, { driver: 'mkwrite' as const, offsets: true }]) {
    const a = new World(buildScenario(options));
    const b = new World(buildScenario(options));
    assert.notEqual(a.views[0]!.mm.id, b.views[0]!.mm.id);
    assert.equal(key(new WorldView(a)), key(new WorldView(b)), JSON.stringify(options));
  }
});

test('PTEs, TLB entries, cache lines, memory, oracle and device copy each change the hash', () => {
  for (const arch of ['x86', 'vivt'] as const) {
    const w = new World(buildScenario({ arch }));
    const shared = w.views[0]!;
    const start = shared.baseVpn * 64;
    const view = new WorldView(w);
    const seen = new Set([key(view)]);
    const changed = (what: string): void => {
      const k = key(view);
      assert.ok(!seen.has(k), `${arch}: ${what} changed nothing`);
      seen.add(k);
    };
    const cpu = w.machine.cpus[0]!;
    cpu.read8(shared.mm, start);
    changed('a read fault (PTEs + TLB fill)');
    w.write({ kind: 'write', cpu: 0, view: 0, page: 0, offset: 0, value: 9 });
    changed('a write (D bit, TLB entry, data or cache line, oracle)');
    w.copyToDevice(1);
    if (arch === 'vivt') {
      w.flushAllCaches();
      changed('a cache write-back');
      w.copyToDevice(1);
    }
    changed('a device copy');
    const vpn = w.vpnOf(shared, 0);
    shared.mm.writePte(vpn, shared.mm.readPte(vpn) & ~PTE_WRITE);
    changed('a PTE write-protect');
    w.machine.flushTlbPage(shared.mm, start);
    changed('a TLB flush');
  }
});

test('the tracker\'s bitmap, bounds, method and vote, and the reservation each change the hash', () => {
  const w = new World(buildScenario({ driver: 'pagetable' }));
  const view = new WorldView(w);
  const t = w.driver!.tracker;
  const seen = new Set([key(view)]);
  const changed = (what: string): void => {
    const k = key(view);
    assert.ok(!seen.has(k), `${what} changed nothing`);
    seen.add(k);
  };
  t.markDirty(1, 2);
  changed('a bit and the bounds');
  t.changeCount++;
  changed('the vote');
  t.method = 'mkwrite';
  changed('the method');
  w.driver!.bo.reservation.reserve('test');
  changed('the reservation');
});

test('save and restore return a world to a state that hashes and behaves the same', () => {
  for (const options of [{}, { arch: 'vivt' as const }, { driver: 'pagetable' as const, munmap: true }]) {
    const w = new World(buildScenario(options));
    const view = new WorldView(w);
    const before = key(view);
    const saved = w.save();
    const run = () => {
      w.write({ kind: 'write', cpu: 0, view: 0, page: 0, offset: 0, value: 7 });
      w.write({ kind: 'write', cpu: 1, view: 0, page: 1, offset: 1, value: 8 });
      if (w.driver !== null) w.validate(1, true);
      else w.clean({ kind: 'clean', first: 0, nr: 2, order: 'deferred' }, new Bitmap(2));
      w.munmap(0);
      return key(view);
    };
    const after = run();
    assert.notEqual(after, before);
    w.restore(saved);
    assert.equal(key(view), before, JSON.stringify(options));
    assert.equal(run(), after, 'the same ops from the restored state reach the same state');
  }
});

test('tracker worlds: VMA flags change the hash, and restoring a checkpoint brings back the flags a later clear_refs reset', () => {
  const w = new World(buildScenario({ helper: 'soft-dirty', remap: true }));
  const view = new WorldView(w);
  const vmas = w.views[0]!.mm.vmas;
  const before = key(view);
  vmas[0]!.flags ^= VM_SOFTDIRTY;
  assert.notEqual(key(view), before, 'VMA flags are part of the state');
  vmas[0]!.flags ^= VM_SOFTDIRTY;
  w.write({ kind: 'write', cpu: 1, view: 0, page: 1, offset: 1, value: 9 });
  w.remap({ kind: 'remap', view: 0, page: 1 });
  assert.ok(vmas[0]!.flags & VM_SOFTDIRTY, 'the page mapped again made its merged VMA soft-dirty');
  const saved = w.save();
  const atSave = key(view);
  const scan = () => {
    const reported = w.scan({ kind: 'scan', tracker: 'soft-dirty', first: 0, nr: 2 });
    return [key(view), reported];
  };
  const after = scan();
  assert.ok((after[1]! & 0b10) !== 0, 'the written page is reported');
  assert.equal(vmas[0]!.flags & VM_SOFTDIRTY, 0, 'clear_refs reset the VMA');
  w.restore(saved);
  assert.ok(vmas[0]!.flags & VM_SOFTDIRTY, 'the flag is back');
  assert.equal(key(view), atSave);
  assert.deepEqual(scan(), after, 'the same scan from the restored state reaches the same state');
});
