// vgpu-dirty/testing: the helpers an integration test imports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CoherenceError, expectCoherent, readOverWire, startTestRig, waitFor, WaitTimeoutError } from '../../src/testing/index.js';

const PS = 4096;

test('waitFor resolves once a (sync or async) condition holds and times out with a typed error naming what it waited for', async () => {
  let n = 0;
  await waitFor(() => ++n >= 3, { interval: 1 });
  assert.equal(n, 3);
  await waitFor(async () => true);
  const t0 = performance.now();
  await assert.rejects(waitFor(() => false, { timeout: 50, what: 'the moon' }), (e: unknown) =>
    e instanceof WaitTimeoutError && /50 ms waiting for the moon/.test(e.message));
  assert.ok(performance.now() - t0 < 1000);
});

test('a test rig writes, flushes and passes expectCoherent; bytes no resource covers make it fail with the pages and the first byte', async () => {
  const rig = await startTestRig();
  try {
    const { driver, machine, mm } = rig;
    const { bo, vma } = rig.buffer(4);
    machine.cpus[0]!.write8(mm, vma.start + 5, 1);
    await rig.expectCoherent(bo);
    await expectCoherent(driver, bo); // over the wire too

    const partial = driver.createBo(4 * PS);
    driver.createBufferResource(partial, 0, 2 * PS); // pages 2, 3 are never uploaded
    const v = driver.mmap(mm, partial);
    machine.cpus[1]!.write8(mm, v.start + 3 * PS + 17, 0xab);
    for (const check of [() => rig.expectCoherent(partial), () => expectCoherent(driver, partial, readOverWire(driver))]) {
      await assert.rejects(check(), (e: unknown) => {
        assert.ok(e instanceof CoherenceError);
        assert.deepEqual(e.differing, [3]);
        assert.deepEqual(e.first, { offset: 3 * PS + 17, guest: 0xab, device: 0 });
        assert.match(e.message, /BO \d+: 1 of 4 pages differ from the device copy: \[3\]; first difference at byte 12305 \(page 3 \+ 17\): guest 0xab, device 0x00/);
        return true;
      });
    }
  } finally {
    await rig.close();
  }
});

test('a rig against a device that refuses the driver fails fast and leaves nothing running', async () => {
  const t0 = performance.now();
  await assert.rejects(startTestRig({ device: { token: 'a' }, driver: { token: 'b' } }), /bad_token/);
  assert.ok(performance.now() - t0 < 3000);
});
