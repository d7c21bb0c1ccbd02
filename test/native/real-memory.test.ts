import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTIN_STRATEGIES, RealBoStore, StrategyError, runMainJob } from '../../src/index.js';
import { LinuxWpMemory, probeLinuxWp } from '../../src/native/index.js';
import { startTestRig } from '../../src/testing/index.js';

const PS = 4096;
const probe = await probeLinuxWp();
/** Skips (with the probe's one-line reason) where the kernel, architecture or permissions do not allow real memory. */
const realTest = (name: string, fn: () => Promise<void>) =>
  test(name, async (t) => {
    if (!probe.ok) {
      t.skip(`real memory unavailable: ${probe.reason}`);
      return;
    }
    await fn();
  });

realTest('run --memory real: the main job writes into real memory tracked by the kernel and ends coherent', async () => {
  const r = await runMainJob({ memory: 'real', strategy: 'uffd-wp', frames: 40, hz: 0, gpuEvery: 20, verifyEvery: 20, seed: 5 });
  assert.deepEqual({ coherent: r.coherent, differingPages: r.differingPages, flushErrors: r.flushErrors, memory: r.memory, strategy: r.strategy },
    { coherent: true, differingPages: 0, flushErrors: 0, memory: 'real', strategy: 'uffd-wp' });
  assert.equal(r.deviceWrites, 2);
  assert.equal(r.readbacks >= 2, true, 'the device\'s renders were read back into real memory');
  assert.ok(r.pagesSent > 0 && r.pagesSent <= r.pagesDirtied);
  assert.equal(r.faults, 0, 'no simulated CPU took part');
});

realTest('real memory with strategy full: coherent too (no tracking needed)', async () => {
  const r = await runMainJob({ memory: 'real', strategy: 'full', frames: 6, hz: 0, gpuEvery: 3, verifyEvery: 3 });
  assert.deepEqual([r.coherent, r.flushErrors], [true, 0]);
});

realTest('a real-memory BO: the kernel reports exactly the pages JS stores touched; a device write is read back before a store to its page', async () => {
  const make = await LinuxWpMemory.maker();
  const rig = await startTestRig({ driver: { strategy: BUILTIN_STRATEGIES['uffd-wp'] } });
  try {
    const { driver } = rig;
    const bo = driver.createBo(16 * PS, { store: (pages) => new RealBoStore(make({ pages }), PS) });
    driver.createBufferResource(bo);
    assert.equal(bo.store.kind, 'real');
    assert.equal((await driver.flush()).pagesTransferred, 0, 'protected whole at creation: nothing reported');
    await driver.cpuWrite(bo, 3 * PS + 1, new Uint8Array([1]));
    await driver.cpuWrite(bo, 10 * PS + 4000, new Uint8Array(200).fill(2)); // pages 10 and 11
    assert.equal((await driver.flush()).pagesTransferred, 3);
    assert.equal((await driver.flush()).pagesTransferred, 0, 're-protected by the scan');
    await rig.expectCoherent(bo);

    rig.device.sessions()[0]!.gpuWrite(bo.id, [[5 * PS, new Uint8Array(100).fill(9)]]);
    await new Promise<void>((resolve) => {
      const poll = () => (driver.conn.seenDeviceWrites === 1 ? resolve() : setTimeout(poll, 2));
      poll();
    });
    assert.deepEqual(bo.deviceNewer.toArray(), [5]);
    await driver.cpuWrite(bo, 5 * PS + 50, new Uint8Array(10).fill(7)); // waits for the readback, then stores
    const page = bo.page(5);
    assert.deepEqual([page[0], page[49], page[50], page[59], page[60], page[100]], [9, 9, 7, 7, 9, 0], 'the CPU\'s store lands on the device\'s bytes');
    await rig.expectCoherent(bo);
    assert.throws(() => driver.mmap(rig.mm, bo), /real memory: write it with cpuWrite/);
  } finally {
    await rig.close();
  }
});

test('--memory real with a strategy that cannot track real memory is refused before anything starts (no kernel needed)', async () => {
  await assert.rejects(runMainJob({ memory: 'real', strategy: 'adaptive', frames: 1 }), (e: unknown) =>
    e instanceof StrategyError && e.reason === 'unsupported' && /strategy 'adaptive' cannot track it \(uffd-wp and full can\)/.test(e.message));
});
