// The soak can fail: with a bug planted in the device or in the driver, it reports a
// violation with the seed that replays it; without the plant the same seeds pass.
// Fault-free runs (--no-faults), so nothing but the plant can break them.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Namespace } from '../../device/store.js';
import { Bo, BoDirtyTracker, DeviceConnection } from '../../src/index.js';
import { soak, type SoakSummary, type Violation } from '../../src/soak/index.js';

const SEEDS = { seed: 1, runs: 6 };

function run(): Promise<SoakSummary> {
  return soak({ ...SEEDS, faults: false, hangMs: 3000 });
}

/** The seeds' first violation, which there must be. */
async function caught(t: TestContext): Promise<Violation> {
  const s = await run();
  assert.ok(s.violations.length > 0, 'no violation reported');
  const v = s.violations[0]!;
  t.diagnostic(`caught: seed ${v.seed} step ${v.step}: ${v.invariant}`);
  return v;
}

/** Replace a method for the duration of fn. */
async function planted<T extends object, K extends keyof T>(proto: T, name: K, impl: (orig: T[K]) => T[K], fn: () => Promise<void>): Promise<void> {
  const orig = proto[name];
  proto[name] = impl(orig);
  try {
    await fn();
  } finally {
    proto[name] = orig;
  }
}

test('control: the planted tests\' seeds pass without a plant', async (t) => {
  t.diagnostic(`seeds ${SEEDS.seed}..${SEEDS.seed + SEEDS.runs - 1}, no faults`);
  const s = await run();
  assert.deepEqual(s.violations, []);
  assert.ok(s.flushesChecked > 50, `${s.flushesChecked} flushes checked`);
});

test('a device that acknowledges a DMA write without applying it is caught', async (t) => {
  t.diagnostic(`seeds ${SEEDS.seed}..${SEEDS.seed + SEEDS.runs - 1}, no faults, every 5th DMA write dropped`);
  let writes = 0;
  // Both DMA ops: write, and writeSpans (span frames, the default encoding's).
  const spans = (orig: Namespace['writeSpans']): Namespace['writeSpans'] => function (this: Namespace, ...args) {
    if (++writes % 5 === 0) return 0;
    return orig.apply(this, args);
  };
  await planted(Namespace.prototype, 'writeSpans', spans, () => planted(Namespace.prototype, 'write', (orig) => function (this: Namespace, id, ranges, seq) {
    // Writes from the wire carry a seq; gpuWrite (the device's own) does not.
    if (seq !== undefined && ++writes % 5 === 0) return ranges.reduce((n, [, d]) => n + d.length, 0);
    return orig.call(this, id, ranges, seq);
  }, async () => {
    const v = await caught(t);
    assert.ok(writes > 0);
    assert.ok(['flush-holds-writes', 'converges'].includes(v.invariant), v.invariant);
    assert.equal(v.difference?.where, 'device');
    assert.match(v.replay, new RegExp(`^vgpu-dirty soak --seed ${v.seed} --runs 1 --no-faults`));
  }));
});

test('a driver whose tracker loses a dirty page is caught', async (t) => {
  t.diagnostic(`seeds ${SEEDS.seed}..${SEEDS.seed + SEEDS.runs - 1}, no faults, every 7th transfer to a resource drops its first dirty page`);
  let transfers = 0;
  // Resource transfer is the tracker's takeDirty (the strategy contract).
  await planted(BoDirtyTracker.prototype, 'takeDirty', (orig) => function (this: BoDirtyTracker, from, to, emit) {
    const first = this.bitmap.findNextSet(from, to);
    if (first < to && ++transfers % 7 === 0) this.bitmap.clear(first);
    return orig.call(this, from, to, emit);
  }, async () => {
    const v = await caught(t);
    assert.ok(transfers > 0);
    assert.equal(v.invariant, 'flush-holds-writes');
    assert.ok(v.difference!.pageCount >= 1);
    // The failing seed replays: the same step, the same invariant, the same bytes.
    transfers = 0;
    const again = await soak({ seed: v.seed, runs: 1, faults: false, hangMs: 3000 });
    assert.deepEqual(again.violations[0], v);
  });
});

test('a driver that drops the bytes of a readback is caught in guest memory', async (t) => {
  t.diagnostic(`seeds ${SEEDS.seed}..${SEEDS.seed + SEEDS.runs - 1}, no faults, every 3rd readback range not copied into guest memory`);
  let copies = 0;
  await planted(Bo.prototype, 'copyIn', (orig) => function (this: Bo, to, src) {
    if (++copies % 3 === 0) return;
    return orig.call(this, to, src);
  }, async () => {
    const v = await caught(t);
    assert.ok(copies > 0);
    assert.ok(['guest-keeps-writes', 'converges'].includes(v.invariant), v.invariant);
    assert.equal(v.difference?.where, 'guest');
  });
});

test('a driver without its fence timeout hangs on a silent device, and the bound reports it', async (t) => {
  t.diagnostic('seed 189 (a silence fault at step 1), hang bound 1000 ms, the connection\'s watchdog disabled');
  const proto = DeviceConnection.prototype as unknown as Record<string, unknown>;
  assert.equal(typeof proto.armWatchdog, 'function', 'the plant needs DeviceConnection.armWatchdog');
  await planted(proto, 'armWatchdog', () => () => undefined, async () => {
    const s = await soak({ seed: 189, runs: 1, hangMs: 1000 });
    assert.ok(s.hangs >= 1);
    const v = s.violations[0]!;
    assert.deepEqual([v.seed, v.invariant, v.message], [189, 'bounded-waits', 'flush did not settle within 1000 ms']);
  });
});
