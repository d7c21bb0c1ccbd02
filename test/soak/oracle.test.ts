// The oracle on its own: what it compares, what it leaves out, and what it reports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Oracle, type BoSpec } from '../../src/soak/index.js';
import { offlineSpace, PS } from '../driver/fixtures.js';

/** A 4-page BO: a buffer over pages 0-1, page 2 covered by nothing, a padded surface on page 3. */
const SPEC: BoSpec = {
  size: 4 * PS,
  resources: [
    { kind: 'buffer', offset: 0, size: 2 * PS },
    { kind: 'surface', offset: 3 * PS, width: 16, height: 4, depth: 1, bytesPerPixel: 4, rowPitch: 128, imagePitch: 512 },
  ],
  mappings: [],
};

function setUp() {
  const { space } = offlineSpace();
  const bo = space.create(SPEC.size);
  const oracle = new Oracle();
  const shadow = oracle.addBo(bo, 0, SPEC, PS);
  /** A CPU write: guest memory changes and the oracle is told. */
  const cpu = (offset: number, bytes: number[]) => {
    const data = new Uint8Array(bytes);
    bo.copyIn(offset, data);
    oracle.cpuWrite(shadow, offset, data);
  };
  const device = new Uint8Array(SPEC.size);
  return { bo, oracle, shadow, cpu, device, copy: () => device.slice() };
}

test('a resolved flush must find on the device every page written before it and not since', () => {
  const { oracle, cpu, device, copy } = setUp();
  cpu(100, [1, 2, 3]);
  const t0 = oracle.clock;
  assert.deepEqual(oracle.checkFlush(t0, copy), {
    bo: 1, handle: 0, pages: [0], pageCount: 1, offset: 100, expected: 1, found: 0, where: 'device', note: undefined,
  });
  device.set([1, 2, 3], 100);
  assert.equal(oracle.checkFlush(t0, copy), null);
  cpu(200, [9]); // written after the flush was called: that page is not the flush's business
  assert.equal(oracle.checkFlush(t0, copy), null);
  assert.equal(oracle.checkFlush(oracle.clock, copy)?.offset, 200);
});

test('bytes no resource covers are never compared on the device, but always in guest memory', () => {
  const { oracle, cpu, bo, copy } = setUp();
  cpu(2 * PS + 5, [7]); // page 2: no resource
  cpu(3 * PS + 64, [8]); // surface row 0, bytes 64..127 are pitch padding
  assert.equal(oracle.checkFlush(oracle.clock, copy), null);
  assert.equal(oracle.checkGuest(), null);
  bo.copyIn(2 * PS + 5, new Uint8Array([0])); // guest memory lost a write
  assert.deepEqual(oracle.checkGuest()?.pages, [2]);
});

test('a missing device copy differs on every page that should hold something', () => {
  const { oracle, cpu } = setUp();
  cpu(PS, [5]);
  const d = oracle.checkFlush(oracle.clock, () => undefined);
  assert.equal(d?.found, null);
  assert.equal(d?.note, 'the device has no BO 1');
});

test('device writes are uncertain until read back (then guest memory must hold them) or lost with their session', () => {
  const { oracle, shadow, bo, cpu, device, copy } = setUp();
  device.set([4, 4], 10);
  oracle.deviceWrite(shadow, 10, new Uint8Array([4, 4]), 1);
  cpu(0, [1]);
  device[0] = 1;
  // Not read back yet: guest memory lacks the bytes, and that is fine.
  assert.equal(oracle.checkGuest(), null);
  bo.noteDeviceWrite(10, 2);
  oracle.settleDeviceWrites(1, () => 0);
  assert.equal(shadow.pending.length, 1, 'still waiting: the driver has the page as device-newer');
  bo.deviceRanges = []; // the driver says it read them back
  bo.settleDeviceWrites();
  oracle.settleDeviceWrites(1, () => 0);
  assert.equal(shadow.pending.length, 0);
  assert.equal(oracle.checkGuest()?.offset, 10, 'the driver claims it read the bytes back, guest memory lacks them');
  bo.copyIn(10, new Uint8Array([4, 4]));
  assert.equal(oracle.checkGuest(), null);
  assert.equal(oracle.checkCoherent(copy), null);
});

test('a device write lost with its session leaves guest memory authoritative', () => {
  const { oracle, shadow, copy } = setUp();
  oracle.deviceWrite(shadow, 10, new Uint8Array([4]), 1);
  assert.match(oracle.checkCoherent(copy)?.note ?? '', /never read back/);
  oracle.settleDeviceWrites(2, (_, b) => (b === 10 ? 0 : 0xff)); // a new session: what guest memory has stands
  assert.equal(oracle.checkCoherent(copy), null);
});
