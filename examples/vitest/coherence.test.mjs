// The same integration test with vitest and vgpu-dirty/testing: write through the simulated MMU,
// flush to the device, and check the device copy. Run: npx vitest run examples/vitest
import { test } from 'vitest';
import { startTestRig } from 'vgpu-dirty/testing';

test('what the CPUs write reaches the device at every flush, also after the device restarts', async () => {
  const rig = await startTestRig({ machine: { cpus: 2 } });
  try {
    const { driver, machine, mm, device } = rig;
    const { bo, vma } = rig.buffer(16);
    const [cpu0, cpu1] = machine.cpus;
    cpu0.write32(mm, vma.start + 8, 0xc0ffee);
    await cpu1.writeAsync(mm, vma.start + 5 * 4096, new Uint8Array(100).fill(7));
    await driver.flush();
    await rig.expectCoherent(bo);

    await device.restart(); // the device forgets everything; the driver reconnects and resyncs
    cpu0.write8(mm, vma.start + 15 * 4096, 1);
    await rig.expectCoherent(bo); // flushes first, retrying is the driver's job
  } finally {
    await rig.close();
  }
});
