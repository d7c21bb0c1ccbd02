/**
 * The few libc entry points and Linux uAPI numbers the real-kernel backend
 * needs, bound through the optional `koffi` FFI package (prebuilt binaries,
 * no compiler). koffi is imported dynamically: without it this module loads
 * and bindLibc() says why it cannot bind.
 *
 * Every pointer argument is passed as an integer address (uintptr_t): the
 * structures live in memory this backend mmaps itself and views from JS.
 */

/** The part of koffi's API used here. */
export interface Koffi {
  load(path: string): { func(signature: string): (...args: unknown[]) => unknown };
  view(ref: bigint, len: number): ArrayBuffer;
  errno(): number;
}

export interface Libc {
  readonly koffi: Koffi;
  syscall1(nr: number, arg: number): number;
  ioctl(fd: number, request: number, arg: number): number;
  mmap(addr: number, len: number, prot: number, flags: number, fd: number, offset: number): number;
  munmap(addr: number, len: number): number;
  madvise(addr: number, len: number, advice: number): number;
  memfdCreate(name: string, flags: number): number;
  ftruncate(fd: number, len: number): number;
  fallocate(fd: number, mode: number, offset: number, len: number): number;
  open(path: string, flags: number): number;
  close(fd: number): number;
  pread(fd: number, buf: number, n: number, offset: number): number;
  sysconf(name: number): number;
  errno(): number;
  /** A JS view of `len` bytes at address `addr` (no copy). */
  view(addr: number, len: number): ArrayBuffer;
}

// mman.h / fcntl.h / memfd.h (generic Linux values: x86-64, arm64, riscv64)
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;
export const MAP_FIXED_NOREPLACE = 0x100000;
export const MADV_DONTNEED = 4;
export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const O_RDONLY = 0;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const MFD_CLOEXEC = 1;
/** unistd.h: sysconf's name for the page size (the same on every Linux architecture glibc and musl support). */
export const SC_PAGESIZE = 30;
/** mmap's failure value, (void *)-1, as koffi returns a uintptr_t. */
export const MAP_FAILED = 2 ** 64 - 1;

// linux/userfaultfd.h
export const UFFD_USER_MODE_ONLY = 1;
export const UFFDIO_API = 0xc018aa3f;
export const UFFDIO_REGISTER = 0xc020aa00;
export const UFFDIO_UNREGISTER = 0x8010aa01;
export const UFFDIO_WRITEPROTECT = 0xc018aa06;
export const UFFDIO_REGISTER_MODE_WP = 1 << 1;
export const UFFDIO_WRITEPROTECT_MODE_WP = 1 << 0;
// linux/fs.h
export const PAGEMAP_SCAN = 0xc0606610;
export const PM_SCAN_ARG_SIZE = 96;
export const PAGE_REGION_SIZE = 24;

/** userfaultfd(2) has no libc wrapper: its syscall number per architecture. */
const USERFAULTFD_NR: Partial<Record<string, number>> = { x64: 323, arm64: 282, riscv64: 282, loong64: 282 };

export function userfaultfdSyscall(): number | null {
  return USERFAULTFD_NR[process.arch] ?? null;
}

const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 4: 'EINTR', 9: 'EBADF', 11: 'EAGAIN', 12: 'ENOMEM', 13: 'EACCES', 14: 'EFAULT',
  16: 'EBUSY', 17: 'EEXIST', 22: 'EINVAL', 25: 'ENOTTY', 28: 'ENOSPC', 38: 'ENOSYS', 95: 'EOPNOTSUPP',
};

export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

/** Import koffi and bind libc; a string says why not. */
export async function bindLibc(): Promise<Libc | string> {
  let koffi: Koffi;
  try {
    // A computed specifier keeps TypeScript (and bundlers) from requiring the optional package.
    const name = 'koffi';
    const mod = (await import(name)) as { default?: Koffi } & Koffi;
    koffi = mod.default ?? mod;
  } catch {
    return 'the optional dependency koffi is not installed';
  }
  let lib: ReturnType<Koffi['load']> | null = null;
  for (const path of ['libc.so.6', 'libc.so']) {
    try {
      lib = koffi.load(path);
      break;
    } catch {
      // try the next name
    }
  }
  if (lib === null) return 'cannot load the C library (libc.so.6)';
  const fn = (sig: string) => {
    const f = lib.func(sig);
    return (...args: unknown[]) => Number(f(...args));
  };
  return {
    koffi,
    syscall1: fn('long syscall(long nr, long arg)'),
    ioctl: fn('int ioctl(int fd, unsigned long request, uintptr_t arg)'),
    mmap: fn('uintptr_t mmap(uintptr_t addr, size_t len, int prot, int flags, int fd, int64_t offset)'),
    munmap: fn('int munmap(uintptr_t addr, size_t len)'),
    madvise: fn('int madvise(uintptr_t addr, size_t len, int advice)'),
    memfdCreate: fn('int memfd_create(const char *name, unsigned int flags)'),
    ftruncate: fn('int ftruncate(int fd, int64_t len)'),
    fallocate: fn('int fallocate(int fd, int mode, int64_t offset, int64_t len)'),
    open: fn('int open(const char *path, int flags)'),
    close: fn('int close(int fd)'),
    pread: fn('long pread(int fd, uintptr_t buf, size_t n, int64_t offset)'),
    sysconf: fn('long sysconf(int name)'),
    errno: () => koffi.errno(),
    view: (addr, len) => koffi.view(BigInt(addr), len),
  };
}
