import { startDevice, type Device, type DeviceOptions } from '../../device/index.js';
import {
  BoSpace, DEFAULT_DIRTY_CONFIG, type DirtyConfig, Driver, type DriverOptions, Machine, type MachineOptions, boVmOps,
} from '../../src/index.js';

/** A BO space with the driver's vm_ops and no device (readback never needed). */
export function offlineSpace(opts: MachineOptions = {}, dirty: Partial<DirtyConfig> = {}) {
  const machine = new Machine({ cpus: 2, memoryBytes: 32 << 20, ...opts });
  const config = { ...DEFAULT_DIRTY_CONFIG, ...dirty };
  let space: BoSpace | null = null;
  const ops = boVmOps(() => space!, config, { readback: () => Promise.reject(new Error('offline: no readback')) });
  space = new BoSpace(machine, machine.createMapping(machine.phys.nrFrames / 2, { ops, populate: false }));
  return { machine, space, config, mm: machine.createMm() };
}

/** An embedded device and a driver connected to it; `close` stops both. */
export async function online(device: DeviceOptions = {}, driver: Partial<DriverOptions> = {}, machine: MachineOptions = {}) {
  const dev: Device = await startDevice({ port: 0, ...device });
  const m = new Machine({ cpus: 2, memoryBytes: 64 << 20, ...machine });
  const drv = await Driver.connect({ machine: m, url: dev.url, backoff: undefined, ...driver } as DriverOptions);
  const mm = m.createMm();
  return {
    dev, drv, machine: m, mm,
    /** A tracked BO of `pages` pages with one buffer resource over all of it, mapped into mm. */
    buffer(pages: number) {
      const bo = drv.createBo(pages * PS);
      drv.createBufferResource(bo);
      return { bo, v: drv.mmap(mm, bo) };
    },
    async close() {
      await drv.close();
      await dev.close();
    },
  };
}

export const PS = 4096;

/** Poll until `cond` holds (every 2 ms, at most `ms`); fail the test with `what` otherwise. */
export async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
