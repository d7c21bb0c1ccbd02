import type { DeviceOptions } from '../../device/index.js';
import {
  BoSpace, DEFAULT_DIRTY_CONFIG, type DirtyConfig, type DriverOptions, Machine, type MachineOptions, boVmOps,
} from '../../src/index.js';
import { startTestRig, waitFor } from '../../src/testing/index.js';

/** A BO space with the driver's vm_ops and no device (readback never needed). */
export function offlineSpace(opts: MachineOptions = {}, dirty: Partial<DirtyConfig> = {}) {
  const machine = new Machine({ cpus: 2, memoryBytes: 32 << 20, ...opts });
  const config = { ...DEFAULT_DIRTY_CONFIG, ...dirty };
  let space: BoSpace | null = null;
  const ops = boVmOps(() => space!, config, { readback: () => Promise.reject(new Error('offline: no readback')) });
  space = new BoSpace(machine, machine.createMapping(machine.phys.nrFrames / 2, { ops, populate: false }));
  return { machine, space, config, mm: machine.createMm() };
}

/** An embedded device and a driver connected to it (vgpu-dirty/testing's rig, in the names these tests use). */
export async function online(device: DeviceOptions = {}, driver: Partial<DriverOptions> = {}, machine: MachineOptions = {}) {
  const rig = await startTestRig({ device, driver, machine });
  return {
    dev: rig.device, drv: rig.driver, machine: rig.machine, mm: rig.mm,
    /** A tracked BO of `pages` pages with one buffer resource over all of it, mapped into mm. */
    buffer(pages: number) {
      const { bo, vma } = rig.buffer(pages);
      return { bo, v: vma };
    },
    close: () => rig.close(),
  };
}

export const PS = 4096;

/** Poll until `cond` holds (at most `ms`); fail the test with `what` otherwise. */
export function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  return waitFor(cond, { timeout: ms, interval: 2, what });
}
