import { InvalidArgumentError, type Mapping, type WpMemory } from '../core/index.js';

/**
 * Where a BO's bytes live: the simulated machine's physical frames (what
 * the simulated CPUs write through page tables) or real memory (a memfd
 * region of this process, written by JS stores and tracked by the running
 * kernel). The writeback engine, readback and the coherence check go
 * through copyOut / copyIn only, so they work the same on both.
 */
export interface BoStore {
  readonly kind: 'simulated' | 'real';
  /** The bytes of BO page i (no copy). */
  page(i: number): Uint8Array;
  /**
   * The bytes of BO pages [i, i + k) as one view (no copy), for the largest k ≤ maxPages that
   * are contiguous in memory (k ≥ 1).
   */
  pageRun(i: number, maxPages: number): Uint8Array;
  /**
   * Real memory tracked with userfaultfd write-protect (register, protect,
   * PAGEMAP_SCAN on the region's pages); absent for simulated memory, which
   * the simulated kernel tracks through its page tables.
   */
  readonly wp?: WpMemory;
  /** The BO is destroyed: give the memory back. */
  release(): void;
}

/** A BO's pgoff range [offset, offset + pages) of the device address space, backed by simulated frames. */
export class SimulatedBoStore implements BoStore {
  readonly kind = 'simulated';

  constructor(private readonly mapping: Mapping, private readonly offset: number, private readonly pages: number) {
    mapping.populate(offset, pages);
  }

  page(i: number): Uint8Array {
    return this.mapping.page(this.offset + i)!;
  }

  pageRun(i: number, maxPages: number): Uint8Array {
    return this.mapping.frameRun(this.offset + i, Math.min(maxPages, this.pages - i))!;
  }

  release(): void {
    this.mapping.release(this.offset, this.pages);
  }
}

/** Real memory that a WpMemory tracks and `bytes` views (a LinuxWpMemory: a memfd mapped into this process). */
export interface RealMemory extends WpMemory {
  readonly bytes: Uint8Array;
}

/**
 * A BO in real memory: one RealMemory region of at least the BO's pages, owned by the BO.
 * The store owns the region from the moment it is given: a store that refuses it closes it
 * (its memfd, userfaultfd and mappings), so a refusal leaks nothing.
 */
export class RealBoStore implements BoStore {
  readonly kind = 'real';

  constructor(readonly wp: RealMemory, pageSize: number) {
    if (wp.pageSize !== pageSize) {
      wp.close();
      throw new InvalidArgumentError(`real memory has ${wp.pageSize}-byte pages, the machine ${pageSize}`);
    }
  }

  page(i: number): Uint8Array {
    return this.pageRun(i, 1);
  }

  pageRun(i: number, maxPages: number): Uint8Array {
    const ps = this.wp.pageSize;
    return this.wp.bytes.subarray(i * ps, (i + Math.max(1, maxPages)) * ps);
  }

  release(): void {
    this.wp.close();
  }
}
