import {
  PAGE_IS_FILE, PAGE_IS_GUARD, PAGE_IS_HUGE, PAGE_IS_PFNZERO, PAGE_IS_PRESENT, PAGE_IS_SOFT_DIRTY, PAGE_IS_SWAPPED,
  PAGE_IS_WPALLOWED, PAGE_IS_WRITTEN, PM_SCAN_CHECK_WPASYNC, PM_SCAN_WP_MATCHING,
} from '../core/index.js';

/**
 * Random sequential programs over one tracked shared-memory region: the
 * input of the differential test. A program is plain data, so it prints,
 * shrinks and replays; it is generated from a seed alone.
 */

export type RangeOpName = 'register' | 'unregister' | 'protect' | 'unprotect' | 'dontneed' | 'punch' | 'unmap' | 'remap';

export type Op =
  /** Store `len` bytes of value `byte` at byte `offset` of the region. */
  | { op: 'write'; offset: number; len: number; byte: number }
  | { op: RangeOpName; page: number; n: number }
  | {
      op: 'scan'; start: number; end: number; flags: number; vecLen: number; maxPages: number;
      inverted: number; mask: number; anyof: number; ret: number;
    };

export interface Program {
  readonly seed: number;
  readonly pages: number;
  /** Where the region starts inside a 2 MiB page-table page, in pages. */
  readonly pmdOffset: number;
  readonly ops: Op[];
}

/** 32-bit PRNG (mulberry32): small, fast, and the same sequence everywhere for a seed. */
export class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + (this.next() % (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() / 2 ** 32 < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.next() % xs.length]!;
  }
}

/** Seed of the i-th program of a run seeded `seed`. */
export function programSeed(seed: number, i: number): number {
  return new Rng((seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0).next();
}

/** Categories worth asking about for shmem memory (HUGE, PFNZERO, GUARD, SOFT_DIRTY never occur but are valid). */
const CATEGORY_BITS = [PAGE_IS_WPALLOWED, PAGE_IS_WRITTEN, PAGE_IS_FILE, PAGE_IS_PRESENT, PAGE_IS_SWAPPED];
const RARE_BITS = [PAGE_IS_PFNZERO, PAGE_IS_HUGE, PAGE_IS_SOFT_DIRTY, PAGE_IS_GUARD];
/** Vector sizes around the kernel's 512-region bounce buffer. */
const VEC_LENS = [0, 1, 2, 3, 7, 64, 511, 512, 513, 600, 1100, 100000];

export interface GenerateOptions {
  /** Upper bound of operations per program (default 40). */
  maxOps?: number;
}

/**
 * Generate the program of `seed`. Writes, MADV_DONTNEED and remaps are
 * aimed at pages the program has mapped (the generator tracks munmap and
 * remap), so the real process never touches memory it unmapped; every other
 * operation may hit holes, unregistered ranges or bad sizes, and the kernel's
 * error is part of what is compared.
 */
export function generateProgram(seed: number, opts: GenerateOptions = {}): Program {
  const r = new Rng(seed);
  const pages = r.chance(0.7) ? r.int(1, 600) : r.chance(0.6) ? r.int(600, 1100) : r.int(1100, 2200);
  const pmdOffset = r.chance(0.3) ? 0 : r.int(0, 511);
  const mapped = new Uint8Array(pages).fill(1);
  const ops: Op[] = [];
  if (r.chance(0.9)) ops.push({ op: 'register', page: 0, n: pages });
  if (r.chance(0.5)) ops.push(scanOp(r, pages, true));
  const count = r.int(1, opts.maxOps ?? 40);
  const range = (): { page: number; n: number } => {
    const page = r.int(0, pages - 1);
    const n = r.chance(0.2) ? pages - page : r.int(1, Math.min(pages - page, r.pick([1, 4, 32, 600])));
    return { page, n };
  };
  for (let i = 0; i < count; i++) {
    const k = r.int(0, 99);
    if (k < 35) {
      const page = r.int(0, pages - 1);
      if (!mapped[page]) continue;
      let end = page + 1;
      const want = r.pick([1, 1, 2, 3, 8, 40]);
      while (end < pages && end - page < want && mapped[end]) end++;
      const offset = page * 4096 + r.int(0, 4095);
      const len = Math.max(1, Math.min(end * 4096 - offset, r.chance(0.5) ? r.int(1, 64) : r.int(1, (end - page) * 4096)));
      ops.push({ op: 'write', offset, len, byte: r.int(1, 255) });
    } else if (k < 60) {
      ops.push(scanOp(r, pages, false));
    } else if (k < 72) {
      ops.push({ op: r.chance(0.5) ? 'protect' : 'unprotect', ...range() });
    } else if (k < 77) {
      ops.push({ op: 'register', ...range() });
    } else if (k < 81) {
      ops.push({ op: 'unregister', ...range() });
    } else if (k < 86) {
      const { page, n } = range();
      let e = page;
      while (e < page + n && mapped[e]) e++;
      if (e > page) ops.push({ op: 'dontneed', page, n: e - page });
    } else if (k < 91) {
      ops.push({ op: 'punch', ...range() });
    } else if (k < 96) {
      const { page, n } = range();
      ops.push({ op: 'unmap', page, n });
      mapped.fill(0, page, page + n);
    } else {
      const hole = mapped.indexOf(0, r.int(0, pages - 1));
      if (hole < 0) continue;
      let e = hole;
      while (e < pages && !mapped[e]) e++;
      const n = r.int(1, e - hole);
      ops.push({ op: 'remap', page: hole, n });
      mapped.fill(1, hole, hole + n);
    }
  }
  return { seed, pages, pmdOffset, ops };
}

function scanOp(r: Rng, pages: number, protectAll: boolean): Op {
  const whole = protectAll || r.chance(0.6);
  const start = whole ? 0 : r.int(0, pages - 1);
  const end = whole ? pages : r.int(start, pages);
  if (protectAll) {
    return { op: 'scan', start, end, flags: PM_SCAN_WP_MATCHING, vecLen: r.pick([0, 100000]), maxPages: 0, inverted: 0, mask: PAGE_IS_WRITTEN, anyof: 0, ret: PAGE_IS_WRITTEN };
  }
  let flags = 0;
  if (r.chance(0.5)) flags |= PM_SCAN_WP_MATCHING;
  if (r.chance(0.3)) flags |= PM_SCAN_CHECK_WPASYNC;
  const vecLen = r.pick(VEC_LENS);
  const maxPages = r.chance(0.6) ? 0 : r.int(1, Math.max(1, end - start + 2));
  if (r.chance(0.55)) {
    return { op: 'scan', start, end, flags, vecLen, maxPages, inverted: 0, mask: PAGE_IS_WRITTEN, anyof: 0, ret: PAGE_IS_WRITTEN };
  }
  const bits = (p: number): number => {
    let m = 0;
    for (const b of CATEGORY_BITS) if (r.chance(p)) m |= b;
    if (r.chance(0.05)) m |= r.pick(RARE_BITS);
    return m;
  };
  return { op: 'scan', start, end, flags, vecLen, maxPages, inverted: bits(0.15), mask: bits(0.25), anyof: r.chance(0.3) ? bits(0.3) : 0, ret: r.chance(0.2) ? 0x1ff : bits(0.5) };
}

/** One line per operation, e.g. `scan [0,64) flags=1 vec=512 max=0 inv=0 mask=2 anyof=0 ret=2`. */
export function formatOp(op: Op): string {
  switch (op.op) {
    case 'write':
      return `write ${op.len} bytes of 0x${op.byte.toString(16)} at ${op.offset} (page ${Math.floor(op.offset / 4096)}${op.offset + op.len > (Math.floor(op.offset / 4096) + 1) * 4096 ? `..${Math.floor((op.offset + op.len - 1) / 4096)}` : ''})`;
    case 'scan':
      return `scan [${op.start},${op.end}) flags=${op.flags} vec=${op.vecLen} max=${op.maxPages} inv=0x${op.inverted.toString(16)} mask=0x${op.mask.toString(16)} anyof=0x${op.anyof.toString(16)} ret=0x${op.ret.toString(16)}`;
    default:
      return `${op.op} [${op.page},${op.page + op.n})`;
  }
}

export function formatProgram(p: Program): string {
  return [`program seed=${p.seed} pages=${p.pages} pmd-offset=${p.pmdOffset}`, ...p.ops.map((o, i) => `  ${String(i).padStart(3)}  ${formatOp(o)}`)].join('\n');
}
