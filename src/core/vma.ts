import type { Mapping } from './mapping.js';
import type { Mm } from './mm.js';
import type { VmOperations } from './fault.js';

/** VMA flags (a subset of the kernel's vm_flags with the same meaning). */
export const VM_READ = 1 << 0;
export const VM_WRITE = 1 << 1;
export const VM_SHARED = 1 << 3;
export const VM_MAYWRITE = 1 << 5;
/** PFN map: pages have no struct page (TTM BO mappings). */
export const VM_PFNMAP = 1 << 10;
/** madvise(MADV_RANDOM): fault handlers prefault a single page. */
export const VM_RAND_READ = 1 << 16;
/** Registered with a userfaultfd in write-protect mode (UFFDIO_REGISTER_MODE_WP). */
export const VM_UFFD_WP = 1 << 12;
/** Every page of the VMA reads as soft-dirty (set on new VMAs, cleared by clear_refs). */
export const VM_SOFTDIRTY = 1 << 27;
export const VM_HUGETLB = 1 << 22;

let nextVmaId = 1;

/**
 * A virtual memory area: VA [start, end) of one process mapping pgoffs
 * [pgoff, pgoff + pages) of a Mapping. Addresses are byte addresses, always
 * page aligned.
 */
export class Vma {
  readonly id = nextVmaId++;

  constructor(
    readonly mm: Mm,
    readonly mapping: Mapping,
    public start: number,
    public end: number,
    public pgoff: number,
    public flags: number,
    readonly ops: VmOperations,
  ) {}

  get pages(): number {
    return (this.end - this.start) / this.mm.pageSize;
  }

  /** Last pgoff + 1. */
  get pgoffEnd(): number {
    return this.pgoff + this.pages;
  }

  /** Pgoff mapped at a VA inside the VMA. */
  pgoffAt(va: number): number {
    return this.pgoff + Math.floor((va - this.start) / this.mm.pageSize);
  }

  /** VA of a pgoff inside the VMA. */
  addressOf(pgoff: number): number {
    return this.start + (pgoff - this.pgoff) * this.mm.pageSize;
  }

  has(flag: number): boolean {
    return (this.flags & flag) === flag;
  }

  toString(): string {
    const f = [
      this.flags & VM_READ ? 'r' : '-',
      this.flags & VM_WRITE ? 'w' : '-',
      this.flags & VM_SHARED ? 's' : 'p',
    ].join('');
    return `vma#${this.id}(mm${this.mm.id} 0x${this.start.toString(16)}-0x${this.end.toString(16)} ${f} pgoff ${this.pgoff})`;
  }
}
