import { Bitmap, InvalidArgumentError, type Machine, type Mapping, OutOfMemoryError, requireInteger } from '../core/index.js';
import { type BoStore, SimulatedBoStore } from './bo-store.js';
import { Definition } from './definition.js';
import { Reservation } from './reservation.js';
import type { Resource } from './resource.js';
import type { DirtyTracker } from './strategies/contract.js';

/**
 * A buffer object: `pages` pages at pgoff `offset` of the device's single
 * address space (its fake mmap offset), backed by its store: its own
 * simulated frames, or real memory.
 */
export class Bo {
  /** Dirty tracker while any coherent user exists (`vbo->dirty`); its strategy's. */
  tracker: DirtyTracker | null = null;
  /** The BO's reservation (dma_resv): held by tracker scans, taken by the fault handlers. */
  readonly reservation = new Reservation();
  /** Resources backed by this BO, sorted by byte offset (the BO's res_tree). */
  readonly resources: Resource[] = [];
  /**
   * Pages the device changed that guest memory does not have yet (read coherence): always
   * the pages of deviceRanges, kept as a bitmap for the fault path. Change both through
   * noteDeviceWrite / settleDeviceWrites / forgetDeviceWrites only.
   */
  readonly deviceNewer: Bitmap;
  /** The exact byte ranges [offset, length] the device changed and guest memory lacks, in arrival order. */
  deviceRanges: Array<[number, number]> = [];
  /** Whether the device knows this BO (defineBo). */
  readonly definition = new Definition();
  /** Set when the BO is destroyed: pending work for it is dropped. */
  destroyed = false;
  /** Settles when the readback in flight for this BO lands in guest memory. */
  readback: Promise<void> | null = null;

  constructor(readonly space: BoSpace, readonly id: number, readonly offset: number, readonly size: number, readonly store: BoStore) {
    this.deviceNewer = new Bitmap(this.pages);
  }

  get pages(): number {
    return Math.ceil(this.size / this.space.pageSize);
  }

  get mapping(): Mapping {
    return this.space.mapping;
  }

  /** Copy len bytes at byte offset `from` of the BO into dst at dstOffset (across pages). */
  copyOut(from: number, dst: Uint8Array, dstOffset: number, len: number): void {
    this.eachChunk(from, len, (run, off, n, done) => dst.set(run.subarray(off, off + n), dstOffset + done));
  }

  /** Copy src into the BO at byte offset `to` (used for readback: the device DMA-writes guest memory). */
  copyIn(to: number, src: Uint8Array): void {
    this.eachChunk(to, src.length, (run, off, n, done) => run.set(src.subarray(done, done + n), off));
  }

  /** The bytes of BO page i (no copy). */
  page(i: number): Uint8Array {
    return this.store.page(i);
  }

  /** BO pages [from, to) that bytes [offset, offset + length) touch, clamped to the BO. */
  pageSpan(offset: number, length: number): [number, number] {
    const ps = this.space.pageSize;
    return [Math.floor(offset / ps), Math.min(this.pages, Math.ceil((offset + length) / ps))];
  }

  /** The device changed bytes [offset, offset + length): guest memory needs them read back. */
  noteDeviceWrite(offset: number, length: number): void {
    const [from, to] = this.pageSpan(offset, length);
    if (from >= to) return;
    this.deviceNewer.setRange(from, to);
    this.deviceRanges.push([offset, Math.min(length, this.size - offset)]);
  }

  /** Some ranges were read back (and removed from deviceRanges): deviceNewer follows what is left. */
  settleDeviceWrites(): void {
    this.deviceNewer.clearAll();
    for (const [offset, length] of this.deviceRanges) this.deviceNewer.setRange(...this.pageSpan(offset, length));
  }

  /** The device lost its changes (a new session): guest memory is the only copy. */
  forgetDeviceWrites(): void {
    this.deviceRanges = [];
    this.deviceNewer.clearAll();
  }

  attach(res: Resource): void {
    let i = 0;
    while (i < this.resources.length && this.resources[i]!.offset <= res.offset) i++;
    this.resources.splice(i, 0, res);
  }

  detach(res: Resource): void {
    const i = this.resources.indexOf(res);
    if (i >= 0) this.resources.splice(i, 1);
  }

  /**
   * Calls fn for each piece of bytes [at, at + len) that is contiguous in memory: `run` holds
   * the piece at run[off..off + n), which is bytes [at + done, at + done + n) of the BO.
   */
  private eachChunk(at: number, len: number, fn: (run: Uint8Array, off: number, n: number, done: number) => void): void {
    if (!Number.isInteger(at) || !Number.isInteger(len) || at < 0 || len < 0 || at + len > this.size) {
      throw new InvalidArgumentError(`bytes [${at}, ${at + len}) are outside BO ${this.id} of ${this.size} bytes`);
    }
    const ps = this.space.pageSize;
    let done = 0;
    while (done < len) {
      const a = at + done;
      const p = Math.floor(a / ps);
      const off = a - p * ps;
      const run = this.store.pageRun(p, Math.ceil((off + len - done) / ps));
      const n = Math.min(run.length - off, len - done);
      fn(run, off, n, done);
      done += n;
    }
  }
}

/**
 * The device's address space (`bdev->dev_mapping`): one Mapping in which every BO
 * occupies its own pgoff range, allocated first-fit. Looking up the BO of a
 * pgoff is a binary search over BOs (once per fault, never per access).
 */
export class BoSpace {
  readonly pageSize: number;
  private readonly bos: Bo[] = [];
  private nextId = 1;

  constructor(readonly machine: Machine, readonly mapping: Mapping) {
    this.pageSize = machine.pageSize;
  }

  get all(): readonly Bo[] {
    return this.bos;
  }

  /**
   * Allocate a BO of `size` bytes: fresh zeroed frames, or the store
   * `store(pages)` makes (real memory). Either way it takes its pgoff range.
   */
  create(size: number, store?: (pages: number) => BoStore): Bo {
    requireInteger('BO size', size, 1);
    const pages = Math.ceil(size / this.pageSize);
    let offset = 0;
    let i = 0;
    for (; i < this.bos.length; i++) {
      const b = this.bos[i]!;
      if (offset + pages <= b.offset) break;
      offset = b.offset + b.pages;
    }
    if (offset + pages > this.mapping.nrPages) throw new OutOfMemoryError(`no room for a ${pages}-page BO in the device address space`);
    const bo = new Bo(this, this.nextId++, offset, size, store?.(pages) ?? new SimulatedBoStore(this.mapping, offset, pages));
    this.bos.splice(i, 0, bo);
    return bo;
  }

  /** Release a BO whose mappings are gone. */
  destroy(bo: Bo): void {
    const i = this.bos.indexOf(bo);
    if (i < 0) return;
    bo.destroyed = true;
    bo.tracker?.dispose?.();
    bo.store.release();
    this.bos.splice(i, 1);
  }

  /** The BO containing pgoff, or null. */
  boAt(pgoff: number): Bo | null {
    const b = this.boAtOrAfter(pgoff);
    return b !== null && b.offset <= pgoff ? b : null;
  }

  /**
   * fn(bo, from, to) for every BO with pages in pgoff range [first, end):
   * its BO pages [from, to) there, in pgoff order. Holes between BOs are
   * skipped, never taken for the end of the range.
   */
  forEachBoIn(first: number, end: number, fn: (bo: Bo, from: number, to: number) => void): void {
    for (let bo = this.boAtOrAfter(first); bo !== null && bo.offset < end; bo = this.boAtOrAfter(bo.offset + bo.pages)) {
      fn(bo, Math.max(first, bo.offset) - bo.offset, Math.min(end, bo.offset + bo.pages) - bo.offset);
    }
  }

  /**
   * The BO containing pgoff or, in a hole (a destroyed or never-used pgoff
   * range), the first BO after it; null past the last BO. Walks over a
   * pgoff range use it so that a hole never hides the BOs beyond it.
   */
  boAtOrAfter(pgoff: number): Bo | null {
    let lo = 0;
    let hi = this.bos.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const b = this.bos[mid]!;
      if (b.offset + b.pages <= pgoff) lo = mid + 1;
      else hi = mid;
    }
    return this.bos[lo] ?? null;
  }
}
