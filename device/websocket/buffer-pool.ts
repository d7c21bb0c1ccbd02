// Reusable receive buffers for the device's WebSocket endpoint (see endpoint.ts for why the
// endpoint is ours). A message that spans several socket reads is copied into one of these;
// whoever receives the message gives the buffer back once it is done with it, and the next
// message of about that size reuses it: no fresh allocation (and page faults, and a dead buffer
// for the GC) per message.
//
// Invariants
// - A buffer is in the free list or out, never both. A second release() of a buffer still in
//   the free list is ignored (and counted): the list holding it twice would hand the same memory
//   to two messages. A release after the buffer went out again cannot be told apart from the new
//   owner's; the reader's one-shot release functions (frame-reader.ts) prevent that.
// - Bounded: the free list holds at most maxFreeBytes; beyond that, and after close(), released
//   buffers are dropped for the GC. A buffer never released is simply garbage-collected.
// - With `poison`, a released buffer is filled with POISON_BYTE first, so a reader that kept a
//   view past release sees poison instead of plausible data (a diagnostic for use-after-release).

/** What a poisoned buffer is filled with. */
export const POISON_BYTE = 0xdb;

/** Free bytes kept for reuse by default (a window of 1 MiB DMA messages several times over). */
export const DEFAULT_MAX_FREE_BYTES = 16 << 20;

/** Capacities are rounded up to this (small) or LARGE_STEP (large), so near sizes share buffers. */
const SMALL_STEP = 4 << 10;
const LARGE_STEP = 64 << 10;

export interface PoolOptions {
  maxFreeBytes?: number;
  poison?: boolean;
}

export class MessageBufferPool {
  private free: Buffer[] = [];
  /** The buffers in `free`, to refuse a second release in O(1). */
  private isFree = new WeakSet<Buffer>();
  private freeBytes = 0;
  private closed = false;
  readonly maxFreeBytes: number;
  readonly poison: boolean;
  /** Buffers allocated and acquisitions served from the free list (for tests and diagnostics). */
  allocated = 0;
  reused = 0;
  /** Releases refused because the buffer was already free (a caller's bug, made harmless). */
  doubleReleases = 0;

  constructor(options: PoolOptions = {}) {
    this.maxFreeBytes = options.maxFreeBytes ?? DEFAULT_MAX_FREE_BYTES;
    this.poison = options.poison ?? false;
  }

  /** A buffer of at least `bytes`; a free one when one fits without wasting more than a step. */
  acquire(bytes: number): Buffer {
    const capacity = capacityFor(bytes);
    const free = this.free;
    for (let i = free.length - 1; i >= 0; i--) {
      const b = free[i]!;
      if (b.length >= bytes && b.length <= capacity + LARGE_STEP) {
        free[i] = free[free.length - 1]!;
        free.pop();
        this.isFree.delete(b);
        this.freeBytes -= b.length;
        this.reused++;
        return b;
      }
    }
    this.allocated++;
    return Buffer.allocUnsafeSlow(capacity);
  }

  /** Takes a buffer back; the caller must not touch it afterwards. */
  release(buffer: Buffer): void {
    if (this.isFree.has(buffer)) {
      this.doubleReleases++;
      return;
    }
    if (this.poison) buffer.fill(POISON_BYTE);
    if (this.closed || this.freeBytes + buffer.length > this.maxFreeBytes) return;
    this.free.push(buffer);
    this.isFree.add(buffer);
    this.freeBytes += buffer.length;
  }

  /** Bytes waiting in the free list. */
  get idleBytes(): number {
    return this.freeBytes;
  }

  /** Drops the free list; later releases are dropped too. */
  close(): void {
    this.closed = true;
    this.free = [];
    this.isFree = new WeakSet();
    this.freeBytes = 0;
  }
}

function capacityFor(bytes: number): number {
  const step = bytes < LARGE_STEP ? SMALL_STEP : LARGE_STEP;
  return Math.max(step, Math.ceil(bytes / step) * step);
}
