/**
 * One execution's world: a freshly built tiny machine for a scenario, the
 * oracle of last written values and the device's copy of the BO.
 *
 * Kept deliberately small because the explorer builds one per interleaving:
 * 64-byte pages, memory for the BO only, and a fully associative TLB with one
 * entry per page the CPUs can touch, so no TLB entry is ever evicted (the
 * replacement pointer then never matters, and state hashing can ignore it).
 */
import { Machine } from '../core/machine.js';
import type { Mapping } from '../core/mapping.js';
import type { Mm } from '../core/mm.js';
import { PTE_DIRTY } from '../core/pte.js';
import { VM_MAYWRITE, VM_SHARED, type Vma } from '../core/vma.js';
import type { Op, Scenario } from './scenario.js';

export const PAGE_SIZE = 64;

export class World {
  readonly machine: Machine;
  readonly bo: Mapping;
  /** The shared writable mapping every CPU writes through. */
  readonly shared: Vma;
  /** Every VMA of the BO, shared first (display order); the private one, if any, sorts first in i_mmap. */
  readonly vmas: readonly Vma[];
  /** Per VMA: shared and writable, i.e. what the helpers track. */
  readonly tracked: readonly boolean[];
  readonly mms: readonly Mm[];
  /** Last value written to each byte of the BO (pgoff * PAGE_SIZE + offset). */
  readonly oracle: Uint8Array;
  /** What the device has copied. */
  readonly device: Uint8Array;
  readonly pages: number;

  constructor(readonly scenario: Scenario) {
    const o = scenario.options;
    this.pages = o.pages;
    this.machine = new Machine({
      cpus: o.cpus,
      arch: o.arch,
      pageSize: PAGE_SIZE,
      memoryBytes: PAGE_SIZE * (o.pages + 1),
      tlbEntries: o.pages,
      tlbWays: o.pages,
      walkStopsAtSkippedVma: o.walkStops,
      nestedFlushRule: o.nestedFlushRule,
    });
    this.bo = this.machine.createMapping(o.pages, { name: 'bo' });
    // Created first, so it sorts before the shared VMA in i_mmap (same pgoff, lower id).
    const priv = o.privateVma ? this.machine.createMm().mmap(this.bo, { pages: o.pages, prot: 'r', shared: false }) : null;
    this.shared = this.machine.createMm().mmap(this.bo, { pages: o.pages });
    this.vmas = priv === null ? [this.shared] : [this.shared, priv];
    this.tracked = this.vmas.map((v) => (v.flags & (VM_SHARED | VM_MAYWRITE)) === (VM_SHARED | VM_MAYWRITE));
    this.mms = this.vmas.map((v) => v.mm);
    this.oracle = new Uint8Array(o.pages * PAGE_SIZE);
    this.device = new Uint8Array(o.pages * PAGE_SIZE);
  }

  /** Virtual page at which `vma` maps pgoff. */
  vpnOf(vma: Vma, pgoff: number): number {
    return vma.start / PAGE_SIZE + pgoff - vma.pgoff;
  }

  /** Pgoff a step point's (mm, vpn) refers to, or -1. */
  pgoffAt(mm: Mm, vpn: number): number {
    for (const v of this.vmas) if (v.mm === mm) return vpn - v.start / PAGE_SIZE + v.pgoff;
    return -1;
  }

  /** Small stable index of an mm id (mm ids grow across executions; hashes must not see them). */
  mmIndex(mmId: number): number {
    for (let i = 0; i < this.mms.length; i++) if (this.mms[i]!.id === mmId) return i;
    return -1;
  }

  pte(vma: Vma, pgoff: number): number {
    return vma.mm.readPte(this.vpnOf(vma, pgoff));
  }

  /** Bit p set when pgoff p in [first, first + nr) has a dirty PTE in a tracked VMA. */
  dirtyMask(first: number, nr: number): number {
    let mask = 0;
    for (let i = 0; i < this.vmas.length; i++) {
      if (!this.tracked[i]) continue;
      for (let p = first; p < first + nr; p++) if (this.pte(this.vmas[i]!, p) & PTE_DIRTY) mask |= 1 << p;
    }
    return mask;
  }

  /** Perform a write op on its CPU (may throw AccessBlockedError). */
  write(op: Extract<Op, { kind: 'write' }>): void {
    this.machine.cpus[op.cpu]!.write8(this.shared.mm, this.shared.addressOf(op.pgoff) + op.offset, op.value);
    this.oracle[op.pgoff * PAGE_SIZE + op.offset] = op.value;
  }

  /** DMA: copy the pages in `mask` from memory into the device copy. */
  copyToDevice(mask: number): void {
    for (let p = 0; p < this.pages; p++) if (mask & (1 << p)) this.device.set(this.bo.page(p)!, p * PAGE_SIZE);
  }

  /** flush_cache_range over every VMA of the BO (a no-op unless the caches are virtually indexed). */
  flushAllCaches(): void {
    for (const v of this.vmas) this.machine.flushCacheRange(v.mm, v.start, v.end);
  }
}
