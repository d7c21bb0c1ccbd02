import { readFileSync } from 'node:fs';
import {
  InvalidArgumentError, SegvError, VgpuError,
  PAGE_IS_WRITTEN, PM_SCAN_WP_MATCHING, type PageRegion, type PmScanArgs, type RegionScan, type WpMemory,
} from '../core/index.js';
import {
  bindLibc, errnoName, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, type Libc, MADV_DONTNEED, MAP_ANONYMOUS, MAP_FAILED,
  MAP_FIXED_NOREPLACE, MAP_PRIVATE, MAP_SHARED, MFD_CLOEXEC, SC_PAGESIZE, O_CLOEXEC, O_NONBLOCK, O_RDONLY, PAGE_REGION_SIZE, PAGEMAP_SCAN,
  PM_SCAN_ARG_SIZE, PROT_READ, PROT_WRITE, UFFD_USER_MODE_ONLY, UFFDIO_API, UFFDIO_REGISTER, UFFDIO_REGISTER_MODE_WP,
  UFFDIO_UNREGISTER, UFFDIO_WRITEPROTECT, UFFDIO_WRITEPROTECT_MODE_WP, userfaultfdSyscall,
} from './libc.js';

/**
 * WpMemory on the running Linux kernel: a memfd mapped MAP_SHARED into this
 * process and viewed from JS as `bytes`, registered with a userfaultfd in
 * async write-protect mode, scanned with PAGEMAP_SCAN on /proc/self/pagemap.
 * JS stores into `bytes` are real CPU writes: the first one to a protected
 * page takes a real fault that the kernel resolves by clearing the uffd-wp bit.
 *
 * `bytes` views raw memory: touching a page that unmap() removed, or any page
 * after close(), kills the process with SIGSEGV. write()/read() check first.
 */

const PAGE_SIZE = 4096;
const UFFD_FEATURE_WP_UNPOPULATED = 1 << 13;
const UFFD_FEATURE_WP_ASYNC = 1 << 15;
const UFFD_API = 0xaa;
/** Scratch page layout: struct pm_scan_arg at 0, uffdio structs at 128. */
const ARG = 0;
const UFFDIO = 128;
/** Pages of one PTE table (2 MiB). */
const PMD_PAGES = 512;
const MAP_NORESERVE = 0x4000;
const MAP_FIXED = 0x10;
/** Regions a scan can return is at most the pages it covers; a vector never needs more than this. */
const VECTOR_MAX = 1 << 20;

/** A syscall failed: `code` is the errno name. */
export class LinuxError extends VgpuError {
  constructor(readonly errno: number, what: string) {
    super(errnoName(errno), `${what}: ${errnoName(errno)}`);
  }
}

/** The kernel, architecture or permissions do not allow the backend; `reason` is one line. */
export class NativeUnavailableError extends VgpuError {
  constructor(readonly reason: string) {
    super('ENOTSUP', `real-kernel uffd-wp backend unavailable: ${reason}`);
  }
}

export interface LinuxWpMemoryOptions {
  pages: number;
  /**
   * Where the region starts inside a 2 MiB page-table page, in pages (default
   * 0). The region sits in an address range reserved for it alone (PROT_NONE
   * on both sides), so no page table of other memory reaches into it and its
   * first and last tables are shared only with the reservation.
   */
  pmdOffset?: number;
  /**
   * Open the userfaultfd with UFFD_USER_MODE_ONLY. Default: only when the
   * plain call is refused (vm.unprivileged_userfaultfd = 0 without
   * CAP_SYS_PTRACE); JS stores are user-mode faults, so either works here.
   */
  userModeOnly?: boolean;
}

let libcPromise: Promise<Libc | string> | null = null;

/**
 * The backend lays out regions, PTE tables and pagemap entries in 4 KiB
 * pages (as the simulator's page size for real BOs is 4096): a kernel with
 * 16 or 64 KiB pages (some arm64 and ppc64 builds) is refused, not
 * mis-tracked.
 */
export function requireSmallPages(libc: Libc | string): Libc | string {
  if (typeof libc === 'string') return libc;
  const pageSize = libc.sysconf(SC_PAGESIZE);
  return pageSize === PAGE_SIZE ? libc : `the kernel's page size is ${pageSize} bytes; this backend handles ${PAGE_SIZE}-byte pages only`;
}

/** The bound C library, or why it cannot be bound (cached). */
export function linuxLibc(): Promise<Libc | string> {
  if (libcPromise === null) {
    if (process.platform !== 'linux') libcPromise = Promise.resolve(`not Linux (${process.platform})`);
    else if (userfaultfdSyscall() === null) libcPromise = Promise.resolve(`no userfaultfd syscall number for architecture ${process.arch}`);
    else libcPromise = bindLibc().then(requireSmallPages);
  }
  return libcPromise;
}

export class LinuxWpMemory implements WpMemory {
  readonly backend = 'linux';
  readonly pageSize = PAGE_SIZE;
  readonly pages: number;
  readonly pmdOffset: number;
  /** Address of page 0. */
  readonly base: number;
  readonly userModeOnly: boolean;
  private readonly libc: Libc;
  private readonly memfd: number;
  private readonly uffd: number;
  private readonly pagemap: number;
  private readonly view: Uint8Array;
  private readonly scratch: number;
  private readonly sv: DataView;
  private vecAddr = 0;
  private vecLen = 0;
  private vecView: DataView | null = null;
  private readonly mapped: Uint8Array;
  private readonly reservation: number;
  private readonly reservationPages: number;
  private closed = false;

  /** Create, map and open everything; throws NativeUnavailableError or LinuxError (and releases what it made). */
  static async open(opts: LinuxWpMemoryOptions): Promise<LinuxWpMemory> {
    const libc = await linuxLibc();
    if (typeof libc === 'string') throw new NativeUnavailableError(libc);
    return new LinuxWpMemory(libc, opts);
  }

  /**
   * A synchronous maker of regions, once the C library is bound: for code
   * that must create memory where it cannot wait (a BO store). Throws
   * NativeUnavailableError like open().
   */
  static async maker(): Promise<(opts: LinuxWpMemoryOptions) => LinuxWpMemory> {
    const libc = await linuxLibc();
    if (typeof libc === 'string') throw new NativeUnavailableError(libc);
    return (opts) => new LinuxWpMemory(libc, opts);
  }

  private constructor(libc: Libc, opts: LinuxWpMemoryOptions) {
    if (!Number.isInteger(opts.pages) || opts.pages < 1) throw new InvalidArgumentError(`pages must be a positive integer, got ${opts.pages}`);
    this.libc = libc;
    this.pages = opts.pages;
    const len = opts.pages * PAGE_SIZE;
    const undo: Array<() => void> = [];
    try {
      this.scratch = this.checkMap(libc.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), 'mmap scratch');
      undo.push(() => libc.munmap(this.scratch, PAGE_SIZE));
      this.sv = new DataView(libc.view(this.scratch, PAGE_SIZE));
      this.memfd = this.check(libc.memfdCreate('vgpu-dirty', MFD_CLOEXEC), 'memfd_create');
      undo.push(() => libc.close(this.memfd));
      this.check(libc.ftruncate(this.memfd, len), 'ftruncate');
      const offset = opts.pmdOffset ?? 0;
      if (!Number.isInteger(offset) || offset < 0 || offset >= PMD_PAGES) throw new InvalidArgumentError(`pmdOffset must be an integer in [0, ${PMD_PAGES}), got ${offset}`);
      // Reservation: one table of slack for alignment, one of margin before and after.
      this.reservationPages = opts.pages + 4 * PMD_PAGES;
      this.reservation = this.checkMap(libc.mmap(0, this.reservationPages * PAGE_SIZE, 0, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0), 'mmap reservation');
      undo.push(() => libc.munmap(this.reservation, this.reservationPages * PAGE_SIZE));
      const pmd = PMD_PAGES * PAGE_SIZE;
      const want = (Math.ceil(this.reservation / pmd) + 1) * pmd + offset * PAGE_SIZE;
      this.base = this.checkMap(libc.mmap(want, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, this.memfd, 0), 'mmap memfd');
      this.view = new Uint8Array(libc.view(this.base, len));
      this.mapped = new Uint8Array(opts.pages).fill(1);
      this.pmdOffset = offset;
      const { fd, userModeOnly } = this.openUserfaultfd(opts.userModeOnly);
      this.uffd = fd;
      this.userModeOnly = userModeOnly;
      undo.push(() => libc.close(this.uffd));
      const s = this.sv;
      s.setBigUint64(UFFDIO, BigInt(UFFD_API), true);
      s.setBigUint64(UFFDIO + 8, BigInt(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED), true);
      s.setBigUint64(UFFDIO + 16, 0n, true);
      if (libc.ioctl(this.uffd, UFFDIO_API, this.scratch + UFFDIO) < 0) {
        const e = libc.errno();
        throw new NativeUnavailableError(`UFFDIO_API with UFFD_FEATURE_WP_ASYNC refused (${errnoName(e)}): the kernel needs Linux 6.7+ with userfaultfd write-protect`);
      }
      this.pagemap = this.check(libc.open('/proc/self/pagemap', O_RDONLY | O_CLOEXEC), 'open /proc/self/pagemap');
      undo.push(() => libc.close(this.pagemap));
      // The output vector is made now, while nothing of the region is unmapped: a mapping made
      // later could land in a hole the caller unmapped and become part of what is tracked.
      this.vector(Math.min(opts.pages + 1, VECTOR_MAX));
      undo.push(() => libc.munmap(this.vecAddr, this.vecLen * PAGE_REGION_SIZE));
    } catch (e) {
      for (const u of undo.reverse()) u();
      throw e;
    }
  }

  /** The memory itself, for stores from JS or worker threads (see the class comment). */
  get bytes(): Uint8Array {
    if (this.closed) throw new InvalidArgumentError('LinuxWpMemory is closed');
    return this.view;
  }

  write(offset: number, data: Uint8Array): void {
    this.checkAccess(offset, data.length, true);
    this.view.set(data, offset);
  }

  read(offset: number, length: number): Uint8Array {
    this.checkAccess(offset, length, false);
    return this.view.slice(offset, offset + length);
  }

  register(page: number, n: number): void {
    this.setRange(page, n);
    this.sv.setBigUint64(UFFDIO + 16, BigInt(UFFDIO_REGISTER_MODE_WP), true);
    this.sv.setBigUint64(UFFDIO + 24, 0n, true);
    this.check(this.libc.ioctl(this.uffd, UFFDIO_REGISTER, this.scratch + UFFDIO), 'UFFDIO_REGISTER');
  }

  unregister(page: number, n: number): void {
    this.setRange(page, n);
    this.check(this.libc.ioctl(this.uffd, UFFDIO_UNREGISTER, this.scratch + UFFDIO), 'UFFDIO_UNREGISTER');
  }

  writeProtect(page: number, n: number, wp: boolean): void {
    this.setRange(page, n);
    this.sv.setBigUint64(UFFDIO + 16, wp ? BigInt(UFFDIO_WRITEPROTECT_MODE_WP) : 0n, true);
    this.check(this.libc.ioctl(this.uffd, UFFDIO_WRITEPROTECT, this.scratch + UFFDIO), 'UFFDIO_WRITEPROTECT');
  }

  scan(args: PmScanArgs): RegionScan {
    this.checkOpen();
    const s = this.sv;
    // A scan of the region returns at most one region per page; the kernel still sees vecLen.
    const vec = args.vecLen > 0 ? this.vector(Math.min(args.vecLen, this.pages + 1)) : 0;
    const put = (i: number, v: number) => s.setBigUint64(ARG + i * 8, BigInt(v), true);
    put(0, PM_SCAN_ARG_SIZE);
    put(1, args.flags ?? 0);
    put(2, this.base + args.start * PAGE_SIZE);
    put(3, this.base + args.end * PAGE_SIZE);
    put(4, 0);
    put(5, vec);
    put(6, args.vecLen);
    put(7, args.maxPages ?? 0);
    put(8, args.categoryInverted ?? 0);
    put(9, args.categoryMask ?? 0);
    put(10, args.categoryAnyofMask ?? 0);
    put(11, args.returnMask ?? 0);
    const n = this.check(this.libc.ioctl(this.pagemap, PAGEMAP_SCAN, this.scratch + ARG), 'PAGEMAP_SCAN');
    const regions: PageRegion[] = [];
    const v = this.vecView;
    for (let i = 0; i < n; i++) {
      const o = i * PAGE_REGION_SIZE;
      regions.push({
        start: this.pageOf(v!.getBigUint64(o, true)),
        end: this.pageOf(v!.getBigUint64(o + 8, true)),
        categories: Number(v!.getBigUint64(o + 16, true)),
      });
    }
    return { regions, walkEnd: this.pageOf(s.getBigUint64(ARG + 32, true)) };
  }

  /**
   * The clean-and-record step: report the pages written since the last call
   * and write-protect them again in the same walk (PAGEMAP_SCAN with
   * PM_SCAN_WP_MATCHING, category and return mask PAGE_IS_WRITTEN), looping
   * while the output vector fills up. Regions in pages of the region.
   */
  collectWritten(vecLen = 512): PageRegion[] {
    const out: PageRegion[] = [];
    for (let start = 0; start < this.pages; ) {
      const r = this.scan({ start, end: this.pages, flags: PM_SCAN_WP_MATCHING, vecLen, categoryMask: PAGE_IS_WRITTEN, returnMask: PAGE_IS_WRITTEN });
      out.push(...r.regions);
      if (r.regions.length < vecLen) break;
      start = r.walkEnd;
    }
    return out;
  }

  dontneed(page: number, n: number): void {
    this.checkPages(page, n);
    this.check(this.libc.madvise(this.base + page * PAGE_SIZE, n * PAGE_SIZE, MADV_DONTNEED), 'madvise(MADV_DONTNEED)');
  }

  punchHole(page: number, n: number): void {
    this.checkPages(page, n);
    this.check(this.libc.fallocate(this.memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, page * PAGE_SIZE, n * PAGE_SIZE), 'fallocate(PUNCH_HOLE)');
  }

  unmap(page: number, n: number): void {
    this.checkPages(page, n);
    this.check(this.libc.munmap(this.base + page * PAGE_SIZE, n * PAGE_SIZE), 'munmap');
    this.mapped.fill(0, page, page + n);
  }

  remap(page: number, n: number): void {
    this.checkPages(page, n);
    const want = this.base + page * PAGE_SIZE;
    const got = this.libc.mmap(want, n * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, this.memfd, page * PAGE_SIZE);
    if (got === MAP_FAILED) throw new LinuxError(this.libc.errno(), 'mmap(MAP_FIXED_NOREPLACE)');
    if (got !== want) {
      // A kernel without MAP_FIXED_NOREPLACE took it as a hint.
      this.libc.munmap(got, n * PAGE_SIZE);
      throw new LinuxError(17, 'mmap(MAP_FIXED_NOREPLACE)');
    }
    this.mapped.fill(1, page, page + n);
  }

  isMapped(page: number): boolean {
    return this.mapped[page] === 1;
  }

  /**
   * Mappings of anything else inside the region (from /proc/self/maps): the
   * process may place an unrelated mapping into a range unmap() left free,
   * which then takes part in what the region's operations see. Empty when
   * the region holds only its own file.
   */
  foreignMappings(): string[] {
    const lo = this.base;
    const hi = this.base + this.pages * PAGE_SIZE;
    const out: string[] = [];
    for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ \d+\s*(.*)$/.exec(line);
      if (m === null) continue;
      const s = parseInt(m[1]!, 16);
      const e = parseInt(m[2]!, 16);
      if (e <= lo || s >= hi) continue;
      if (!m[4]!.includes('memfd:vgpu-dirty')) out.push(line);
    }
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const l = this.libc;
    l.munmap(this.reservation, this.reservationPages * PAGE_SIZE);
    if (this.vecAddr !== 0) l.munmap(this.vecAddr, this.vecLen * PAGE_REGION_SIZE);
    l.munmap(this.scratch, PAGE_SIZE);
    l.close(this.pagemap);
    l.close(this.uffd);
    l.close(this.memfd);
  }

  private openUserfaultfd(userModeOnly: boolean | undefined): { fd: number; userModeOnly: boolean } {
    const nr = userfaultfdSyscall()!;
    const flags = O_CLOEXEC | O_NONBLOCK;
    if (userModeOnly !== true) {
      const fd = this.libc.syscall1(nr, flags);
      if (fd >= 0) return { fd, userModeOnly: false };
      const e = this.libc.errno();
      if (e !== 1 || userModeOnly === false) throw new NativeUnavailableError(`userfaultfd() refused: ${errnoName(e)}`);
    }
    const fd = this.libc.syscall1(nr, flags | UFFD_USER_MODE_ONLY);
    if (fd < 0) {
      const e = this.libc.errno();
      throw new NativeUnavailableError(`userfaultfd(UFFD_USER_MODE_ONLY) refused: ${errnoName(e)} (vm.unprivileged_userfaultfd, CAP_SYS_PTRACE or a seccomp filter)`);
    }
    return { fd, userModeOnly: true };
  }

  /** A page_region vector of at least n entries, in memory of its own. */
  private vector(n: number): number {
    if (n > this.vecLen) {
      if (this.vecAddr !== 0) this.libc.munmap(this.vecAddr, this.vecLen * PAGE_REGION_SIZE);
      this.vecAddr = 0;
      this.vecAddr = this.checkMap(this.libc.mmap(0, n * PAGE_REGION_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), 'mmap vector');
      this.vecLen = n;
      this.vecView = new DataView(this.libc.view(this.vecAddr, n * PAGE_REGION_SIZE));
    }
    return this.vecAddr;
  }

  private setRange(page: number, n: number): void {
    // Outside the region is other memory of this process: never registered or protected from here.
    this.checkPages(page, n);
    this.sv.setBigUint64(UFFDIO, BigInt(this.base + page * PAGE_SIZE), true);
    this.sv.setBigUint64(UFFDIO + 8, BigInt(n * PAGE_SIZE), true);
  }

  private pageOf(addr: bigint): number {
    return (Number(addr) - this.base) / PAGE_SIZE;
  }

  private checkOpen(): void {
    if (this.closed) throw new InvalidArgumentError('LinuxWpMemory is closed');
  }

  /** Operations that change mappings stay inside the region: outside it is other code's memory. */
  private checkPages(page: number, n: number): void {
    this.checkOpen();
    if (!Number.isInteger(page) || !Number.isInteger(n) || page < 0 || n < 1 || page + n > this.pages) {
      throw new InvalidArgumentError(`pages [${page}, ${page + n}) are outside the region of ${this.pages}`);
    }
  }

  private checkAccess(offset: number, length: number, write: boolean): void {
    this.checkOpen();
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > this.pages * PAGE_SIZE) {
      throw new InvalidArgumentError(`access ${offset}+${length} is outside the region of ${this.pages} pages`);
    }
    for (let p = Math.floor(offset / PAGE_SIZE); p * PAGE_SIZE < offset + length; p++) {
      if (this.mapped[p] !== 1) throw new SegvError(`page ${p} of the region is not mapped`, -1, this.base + p * PAGE_SIZE, write);
    }
  }

  private check(r: number, what: string): number {
    if (r < 0) throw new LinuxError(this.libc.errno(), what);
    return r;
  }

  private checkMap(r: number, what: string): number {
    if (r === MAP_FAILED) throw new LinuxError(this.libc.errno(), what);
    return r;
  }
}

/** Feature detection: can this process use the backend? One line when it cannot (cached). */
let probed: Promise<{ ok: true; userModeOnly: boolean } | { ok: false; reason: string }> | null = null;

export function probeLinuxWp(): Promise<{ ok: true; userModeOnly: boolean } | { ok: false; reason: string }> {
  if (probed === null) probed = runProbe();
  return probed;
}

async function runProbe(): Promise<{ ok: true; userModeOnly: boolean } | { ok: false; reason: string }> {
  let m: LinuxWpMemory | null = null;
  try {
    m = await LinuxWpMemory.open({ pages: 2 });
    m.register(0, 2);
    try {
      m.scan({ start: 0, end: 2, vecLen: 1, categoryMask: PAGE_IS_WRITTEN, returnMask: PAGE_IS_WRITTEN });
    } catch (e) {
      if (e instanceof LinuxError && (e.code === 'ENOTTY' || e.code === 'EINVAL')) return { ok: false, reason: 'no PAGEMAP_SCAN ioctl on /proc/self/pagemap (needs Linux 6.7+)' };
      throw e;
    }
    return { ok: true, userModeOnly: m.userModeOnly };
  } catch (e) {
    if (e instanceof NativeUnavailableError) return { ok: false, reason: e.reason };
    if (e instanceof LinuxError && e.message.startsWith('UFFDIO_REGISTER')) return { ok: false, reason: `UFFDIO_REGISTER of a memfd in write-protect mode refused (${e.code})` };
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  } finally {
    m?.close();
  }
}
