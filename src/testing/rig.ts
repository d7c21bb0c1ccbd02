import { startDevice, type Device, type DeviceOptions } from '../../device/index.js';
import { Machine, type MachineOptions, type Mm, type Vma } from '../core/index.js';
import type { Bo } from '../driver/bo.js';
import { Driver, type DriverOptions } from '../driver/driver.js';
import type { BufferResource } from '../driver/resource.js';
import { expectCoherent } from './coherence.js';

export interface TestRigOptions {
  /** Options of the in-process device (port 0 on 127.0.0.1 unless given). */
  device?: DeviceOptions;
  machine?: MachineOptions;
  /** Driver options on top of the rig's bounded defaults. */
  driver?: Partial<Omit<DriverOptions, 'machine' | 'url'>>;
}

/** A device, a driver connected to it, a machine and one process: what an integration test starts from. */
export interface TestRig {
  readonly device: Device;
  readonly driver: Driver;
  readonly machine: Machine;
  /** A process of the machine. */
  readonly mm: Mm;
  /** A tracked BO of `pages` pages with one buffer resource over all of it, mapped into mm. */
  buffer(pages: number): { bo: Bo; resource: BufferResource; vma: Vma };
  /** expectCoherent, reading the device's bytes in process. */
  expectCoherent(bo: Bo): Promise<void>;
  /** Close the driver, then the device. */
  close(): Promise<void>;
}

/**
 * Start an in-process device on an ephemeral loopback port (with any faults
 * or recording its options ask for) and a driver connected to it with
 * bounds fit for tests: connect gives up after 5 s, a silent device is
 * dropped after 10 s.
 */
export async function startTestRig(opts: TestRigOptions = {}): Promise<TestRig> {
  const device = await startDevice({ port: 0, host: '127.0.0.1', ...opts.device });
  const machine = new Machine({ cpus: 2, memoryBytes: 64 << 20, ...opts.machine });
  let driver: Driver;
  try {
    driver = await Driver.connect({
      fenceTimeoutMs: 10_000,
      ...opts.driver,
      connect: { timeoutMs: 5000, ...opts.driver?.connect },
      machine,
      url: device.url,
    });
  } catch (e) {
    await device.close();
    throw e;
  }
  const mm = machine.createMm();
  const ps = machine.pageSize;
  return {
    device, driver, machine, mm,
    buffer(pages) {
      const bo = driver.createBo(pages * ps);
      const resource = driver.createBufferResource(bo);
      return { bo, resource, vma: driver.mmap(mm, bo) };
    },
    expectCoherent(bo) {
      return expectCoherent(driver, bo, async (b, offset, length) => {
        const session = driver.conn.welcome?.session;
        const bytes = session === undefined ? undefined : device.session(session)?.bo(b.id);
        if (bytes === undefined) throw new Error(`the device has no BO ${b.id} in the driver's session`);
        return bytes.subarray(offset, offset + length);
      });
    },
    async close() {
      await driver.close();
      await device.close();
    },
  };
}
