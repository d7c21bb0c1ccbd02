import { type Bo, type BufferResource, Driver, Machine, type Mm, type Vma } from '../../src/index.js';

/** Physical memory beyond the BO: page tables live outside it, this covers BoSpace rounding and slack. */
const MEMORY_MARGIN = 16 << 20;

/**
 * A driver connected to `url` with one BO of `bytes` bytes behind a buffer
 * resource, mapped into one process — the smallest setup that moves bytes
 * through the whole writeback path.
 */
export class BoDriver {
  private constructor(
    readonly drv: Driver,
    readonly machine: Machine,
    readonly bo: Bo,
    readonly res: BufferResource,
    readonly mm: Mm,
    readonly vma: Vma,
  ) {}

  static async open(url: string, bytes: number, opts: { zeroMask: boolean; windowBatches?: number }): Promise<BoDriver> {
    const machine = new Machine({ cpus: 2, memoryBytes: bytes + MEMORY_MARGIN });
    const drv = await Driver.connect({
      machine, url, reconnect: false,
      connection: { zeroMask: opts.zeroMask },
      // Whole pages, as the raw baselines send them (a 256 MiB BO is beyond the default delta
      // budget anyway; smaller ones here would be sent as deltas): deltas are scenario 10's.
      writeback: { deltaBudgetBytes: 0, ...(opts.windowBatches === undefined ? {} : { windowBatches: opts.windowBatches }) },
    });
    const bo = drv.createBo(bytes);
    const res = drv.createBufferResource(bo);
    const mm = machine.createMm();
    return new BoDriver(drv, machine, bo, res, mm, drv.mmap(mm, bo));
  }

  /** Write 8 bytes into each of `pages` pages starting at `first` from CPU 0 (faults, mkwrite, D bits: the real path). */
  dirtyPages(first: number, pages: number, value: number): void {
    const cpu = this.machine.cpus[0]!;
    const ps = this.machine.pageSize;
    for (let p = first; p < first + pages; p++) cpu.writeF64(this.mm, this.vma.start + p * ps, value);
  }

  dirtyAll(value: number): void {
    this.dirtyPages(0, this.bo.pages, value);
  }

  /** Fail loudly when the device copy differs: a fast but wrong writeback is no result. */
  async verify(): Promise<void> {
    const r = await this.drv.verifyCoherent(this.bo);
    if (!r.ok) throw new Error(`device copy differs from guest memory in ${r.differing.length} pages`);
  }

  close(): Promise<void> {
    return this.drv.close();
  }
}
