import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runMainJob } from '../../src/index.js';
import { startTestRig } from '../../src/testing/index.js';

const PS = 4096;

// Short runs of the main job: busy frames (text scroll, sprite, 300 vertex writes), two device-side
// renders into the framebuffer (read coherence) and three verifications, under the strategies built
// on the userspace trackers (and full, the baseline). test/cli/run.test.ts runs the vmwgfx ones.
for (const strategy of ['soft-dirty', 'uffd-wp', 'full'] as const) {
  test(`main job under ${strategy}: coherent at every verification, no flush error`, async () => {
    const r = await runMainJob({ strategy, frames: 40, hz: 0, gpuEvery: 20, verifyEvery: 20, seed: 3 });
    assert.equal(r.strategy, strategy);
    assert.equal(r.memory, 'simulated');
    assert.deepEqual({ coherent: r.coherent, differingPages: r.differingPages, flushErrors: r.flushErrors }, { coherent: true, differingPages: 0, flushErrors: 0 });
    assert.equal(r.deviceWrites, 2);
    assert.ok(r.pagesSent > 0 && r.pagesDirtied > 0);
    // full: every round sends both BOs whole, 2025 framebuffer pages and 1024 vertex-buffer pages.
    if (strategy === 'full') assert.equal(r.pagesSent % (2025 + 1024), 0, 'full sends every page of both BOs in every round');
    else assert.ok(r.pagesSent < r.pagesDirtied, `${strategy} sends each page once per flush, not per write`);
  });
}

test('a flush waits for a readback already in flight instead of giving up on the pages it holds back', async () => {
  const rig = await startTestRig();
  try {
    const { bo, vma } = rig.buffer(4);
    const [c0, c1] = rig.machine.cpus as [typeof rig.machine.cpus[0], typeof rig.machine.cpus[0]];
    await rig.driver.flush();
    c0.write8(rig.mm, vma.start + PS + 10, 7); // dirty, not yet sent
    rig.device.sessions()[0]!.gpuWrite(bo.id, [[PS + 100, new Uint8Array(8).fill(9)]]);
    await new Promise<void>((resolve) => {
      const poll = () => (rig.driver.conn.seenDeviceWrites === 1 ? resolve() : setTimeout(poll, 2));
      poll();
    });
    const access = c1.writeAsync(rig.mm, vma.start + PS + 20, new Uint8Array([5])); // faults, starts the readback
    assert.ok(bo.readback !== null && bo.deviceRanges.length === 0, 'the readback took its ranges and is in flight');
    await rig.driver.flush(); // rejected with IncompleteFlushError when it did not wait for that readback
    await access;
    await rig.expectCoherent(bo);
  } finally {
    await rig.close();
  }
});
