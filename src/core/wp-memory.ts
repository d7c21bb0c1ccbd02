import type { Cpu } from './cpu.js';
import { InvalidArgumentError, SegvError } from './errors.js';
import { Machine } from './machine.js';
import type { Mapping } from './mapping.js';
import type { Mm } from './mm.js';
import { pagemapScan, type PageRegion, type PmScanArgs } from './pagemap-scan.js';
import { PAGES_PER_PMD } from './pagetable.js';
import { madviseDontneed, punchHole, shmemFileOps } from './shmem.js';
import { KernelError, Userfaultfd, UFFD_FEATURE_WP_ASYNC, UFFD_FEATURE_WP_UNPOPULATED } from './uffd-wp.js';

/**
 * A shared-memory region (a memfd mapped MAP_SHARED into one process)
 * tracked with async userfaultfd write-protect and PAGEMAP_SCAN: the one
 * interface the simulator (SimWpMemory) and the real kernel (src/native)
 * both implement, so a test, the differential checker or the bench runs the
 * same program on both. Pages are indices into the region; every range is
 * [page, page + n). Kernel errors surface as VgpuError with the errno name as
 * `code` (EINVAL, ENOENT, EPERM, ENOMEM, EEXIST).
 */
export interface WpMemory {
  readonly backend: 'simulated' | 'linux';
  readonly pages: number;
  readonly pageSize: number;
  /**
   * Where the region starts inside its 2 MiB page-table page, in pages. It
   * decides which pages share a PTE table, which PAGEMAP_SCAN can show.
   */
  readonly pmdOffset: number;
  /** Store bytes at a byte offset of the region (CPU writes; every touched page must be mapped). */
  write(offset: number, data: Uint8Array): void;
  /** Load bytes (every touched page must be mapped). */
  read(offset: number, length: number): Uint8Array;
  /** UFFDIO_REGISTER (mode WP) / UFFDIO_UNREGISTER. */
  register(page: number, n: number): void;
  unregister(page: number, n: number): void;
  /** UFFDIO_WRITEPROTECT: protect or un-protect. */
  writeProtect(page: number, n: number, wp: boolean): void;
  /** PAGEMAP_SCAN over pages [args.start, args.end); regions and walkEnd in pages of the region. */
  scan(args: PmScanArgs): RegionScan;
  /** madvise(MADV_DONTNEED). */
  dontneed(page: number, n: number): void;
  /** fallocate(PUNCH_HOLE | KEEP_SIZE) of the backing file's pages. */
  punchHole(page: number, n: number): void;
  /** munmap part of the region. */
  unmap(page: number, n: number): void;
  /** mmap the file's pages back at their place (MAP_FIXED_NOREPLACE: the range must be unmapped). */
  remap(page: number, n: number): void;
  /** Whether page is mapped (so write/read may touch it). */
  isMapped(page: number): boolean;
  /**
   * Real memory only: unrelated mappings the process placed inside the
   * region (into a range unmap() freed). A result compared while there are
   * any is not about the region alone.
   */
  foreignMappings?(): string[];
  close(): void;
}

/** A PAGEMAP_SCAN result in region pages. */
export interface RegionScan {
  regions: PageRegion[];
  walkEnd: number;
}

export interface SimWpMemoryOptions {
  pages: number;
  /** Start offset inside a page-table page (default 0: 2 MiB aligned). */
  pmdOffset?: number;
  /** Sync mode instead of async (writes to protected pages then block). */
  sync?: boolean;
}

/** WpMemory on the simulator: a shmem mapping in one process, one CPU doing the stores. */
export class SimWpMemory implements WpMemory {
  readonly backend = 'simulated';
  readonly pages: number;
  readonly pageSize: number;
  readonly pmdOffset: number;
  readonly machine: Machine;
  readonly mm: Mm;
  readonly file: Mapping;
  readonly uffd: Userfaultfd;
  /** VA of page 0. */
  readonly base: number;
  private readonly cpu: Cpu;

  constructor(opts: SimWpMemoryOptions) {
    this.pages = opts.pages;
    this.pmdOffset = opts.pmdOffset ?? 0;
    if (!Number.isInteger(this.pmdOffset) || this.pmdOffset < 0 || this.pmdOffset >= PAGES_PER_PMD) {
      throw new InvalidArgumentError(`pmdOffset must be an integer in [0, ${PAGES_PER_PMD}), got ${this.pmdOffset}`);
    }
    this.machine = new Machine({ cpus: 1, memoryBytes: (opts.pages + 64) * 4096 });
    this.pageSize = this.machine.pageSize;
    this.file = this.machine.createMapping(opts.pages, { kind: 'shmem', ops: shmemFileOps(), populate: false, name: 'memfd' });
    this.mm = this.machine.createMm();
    // Laid out as the real backend does: the region with an inaccessible reservation on each side.
    this.base = (2 * PAGES_PER_PMD + this.pmdOffset) * this.pageSize;
    const reserve = this.machine.createMapping(PAGES_PER_PMD, { populate: false, name: 'reservation' });
    this.mm.mmap(reserve, { pages: PAGES_PER_PMD, address: this.base - PAGES_PER_PMD * this.pageSize, prot: 'none', shared: false });
    this.mm.mmap(this.file, { pages: opts.pages, address: this.base });
    this.mm.mmap(reserve, { pages: PAGES_PER_PMD, address: this.base + opts.pages * this.pageSize, prot: 'none', shared: false });
    this.uffd = new Userfaultfd(this.mm, opts.sync ? 0 : UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED);
    this.cpu = this.machine.cpus[0]!;
  }

  write(offset: number, data: Uint8Array): void {
    this.checkMapped(offset, data.length, true);
    this.cpu.write(this.mm, this.base + offset, data);
  }

  read(offset: number, length: number): Uint8Array {
    this.checkMapped(offset, length, false);
    return this.cpu.read(this.mm, this.base + offset, length);
  }

  register(page: number, n: number): void {
    this.uffd.register(this.va(page), n * this.pageSize);
  }

  unregister(page: number, n: number): void {
    this.uffd.unregister(this.va(page), n * this.pageSize);
  }

  writeProtect(page: number, n: number, wp: boolean): void {
    this.uffd.writeProtect(this.va(page), n * this.pageSize, wp);
  }

  scan(args: PmScanArgs): RegionScan {
    const r = pagemapScan(this.mm, { ...args, start: this.va(args.start), end: this.va(args.end) });
    return {
      regions: r.regions.map((g) => ({ start: this.page(g.start), end: this.page(g.end), categories: g.categories })),
      walkEnd: this.page(r.walkEnd),
    };
  }

  dontneed(page: number, n: number): void {
    madviseDontneed(this.mm, this.va(page), n * this.pageSize);
  }

  punchHole(page: number, n: number): void {
    punchHole(this.file, page, n);
  }

  unmap(page: number, n: number): void {
    this.mm.munmap(this.va(page), n * this.pageSize);
  }

  remap(page: number, n: number): void {
    for (let p = page; p < page + n; p++) {
      if (this.isMapped(p)) throw new KernelError('EEXIST', `MAP_FIXED_NOREPLACE: page ${p} is mapped`);
    }
    this.mm.mmap(this.file, { pages: n, pgoff: page, address: this.va(page) });
  }

  isMapped(page: number): boolean {
    return this.mm.findVma(this.va(page)) !== null;
  }

  close(): void {
    this.uffd.close();
  }

  private va(page: number): number {
    return this.base + page * this.pageSize;
  }

  private page(va: number): number {
    return (va - this.base) / this.pageSize;
  }

  private checkMapped(offset: number, length: number, write: boolean): void {
    if (!Number.isInteger(offset) || offset < 0 || length < 0 || offset + length > this.pages * this.pageSize) {
      throw new InvalidArgumentError(`access ${offset}+${length} is outside the region of ${this.pages} pages`);
    }
    for (let p = Math.floor(offset / this.pageSize); p * this.pageSize < offset + length; p++) {
      if (!this.isMapped(p)) throw new SegvError(`page ${p} of the region is not mapped`, this.cpu.id, this.va(p), write);
    }
  }
}
