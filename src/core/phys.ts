import { InvalidArgumentError, OutOfMemoryError, requireInteger } from './errors.js';
import { MAX_PFN } from './pte.js';

/**
 * Physical memory: page frames in one ArrayBuffer. Frames are handed out by a
 * bump pointer plus a free stack, so allocation and release are O(1) and the
 * order is deterministic.
 */
export class PhysicalMemory {
  readonly pageShift: number;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  private readonly freeStack: Int32Array;
  private freeTop = 0;
  private bump = 0;
  private used = 0;

  constructor(readonly pageSize: number, readonly nrFrames: number) {
    if (!Number.isInteger(pageSize) || pageSize < 64 || (pageSize & (pageSize - 1)) !== 0 || pageSize > 1 << 24) {
      throw new InvalidArgumentError(`page size must be a power of two in [64, 16 MiB], got ${pageSize}`);
    }
    requireInteger('frame count', nrFrames, 1, MAX_PFN + 1);
    this.pageShift = 31 - Math.clz32(pageSize);
    this.bytes = new Uint8Array(nrFrames * pageSize);
    this.view = new DataView(this.bytes.buffer);
    this.freeStack = new Int32Array(nrFrames);
  }

  get framesInUse(): number {
    return this.used;
  }

  /** Allocate one zero-filled frame. */
  allocFrame(): number {
    let pfn: number;
    if (this.freeTop > 0) pfn = this.freeStack[--this.freeTop]!;
    else if (this.bump < this.nrFrames) pfn = this.bump++;
    else throw new OutOfMemoryError(`out of physical frames (${this.nrFrames} of ${this.pageSize} bytes)`);
    this.used++;
    return pfn;
  }

  freeFrame(pfn: number): void {
    requireInteger('pfn', pfn, 0, this.nrFrames - 1);
    this.frame(pfn).fill(0);
    this.freeStack[this.freeTop++] = pfn;
    this.used--;
  }

  /** Copy frames and allocator state into `into` (reusing it) or a new object. */
  saveState(into?: PhysState): PhysState {
    const s = into ?? { bytes: new Uint8Array(this.bytes.length), freeStack: new Int32Array(this.nrFrames), freeTop: 0, bump: 0, used: 0 };
    s.bytes.set(this.bytes);
    s.freeStack.set(this.freeStack);
    s.freeTop = this.freeTop;
    s.bump = this.bump;
    s.used = this.used;
    return s;
  }

  restoreState(s: PhysState): void {
    this.bytes.set(s.bytes);
    this.freeStack.set(s.freeStack);
    this.freeTop = s.freeTop;
    this.bump = s.bump;
    this.used = s.used;
  }

  /** A view of one frame's bytes (no copy). */
  frame(pfn: number): Uint8Array {
    const off = pfn * this.pageSize;
    return this.bytes.subarray(off, off + this.pageSize);
  }
}

/** A copy of physical memory and its allocator (saveState / restoreState). */
export interface PhysState {
  bytes: Uint8Array;
  freeStack: Int32Array;
  freeTop: number;
  bump: number;
  used: number;
}
