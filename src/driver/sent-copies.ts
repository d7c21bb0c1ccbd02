import { copyBytes } from './dma-encoder.js';
import type { Bo } from './bo.js';

/** Granularity of sub-page deltas: a span starts and ends on a multiple of this many bytes. */
export const DELTA_BLOCK = 16;

/**
 * What the driver last sent of each BO, kept to send only the bytes that changed since
 * (sub-page deltas). A copy is exact (no hashes: a collision would silently lose a write).
 *
 * Invariant: a block marked known holds exactly the device's bytes of that block. It is
 * marked only after its bytes went out in a frame, and every event that may make the device's
 * copy differ forgets: a failed or refused frame and a new session forget everything
 * (forgetAll; the device applied an unknown part, or nothing), a device write forgets its
 * blocks (forgetRange). A block not known is sent whole. Copies live within a byte budget;
 * a BO that does not fit gets none and is always sent whole.
 */
export class SentCopies {
  private readonly copies = new Map<Bo, SentCopy>();
  private used = 0;

  constructor(readonly budgetBytes: number) {}

  /** The copy of `bo`, made now if the budget allows, or null. */
  of(bo: Bo): SentCopy | null {
    let c = this.copies.get(bo);
    if (c !== undefined) return c;
    this.dropDestroyed();
    if (this.used + bo.size > this.budgetBytes) return null;
    c = new SentCopy(bo.size);
    this.copies.set(bo, c);
    this.used += bo.size;
    return c;
  }

  /** The device's copy of everything is unknown now. */
  forgetAll(): void {
    for (const c of this.copies.values()) c.forgetAll();
  }

  /** The device changed bytes [offset, offset + length) of the BO with this id. */
  forgetRange(boId: number, offset: number, length: number): void {
    for (const [bo, c] of this.copies) if (bo.id === boId && !bo.destroyed) c.forget(offset, length);
  }

  get bytes(): number {
    return this.used;
  }

  private dropDestroyed(): void {
    for (const [bo, c] of this.copies) {
      if (!bo.destroyed) continue;
      this.copies.delete(bo);
      this.used -= c.size;
    }
  }
}

/** The last-sent bytes of one BO and which blocks of them are known to equal the device's. */
export class SentCopy {
  readonly bytes: Uint8Array;
  private readonly words: Int32Array;
  /** One bit per DELTA_BLOCK bytes. */
  private readonly known: Uint32Array;

  constructor(readonly size: number) {
    this.bytes = new Uint8Array(Math.ceil(size / 4) * 4);
    this.words = new Int32Array(this.bytes.buffer);
    this.known = new Uint32Array(Math.ceil(Math.ceil(size / DELTA_BLOCK) / 32));
  }

  forgetAll(): void {
    this.known.fill(0);
  }

  forget(offset: number, length: number): void {
    const end = Math.min(offset + length, this.size);
    for (let b = Math.floor(offset / DELTA_BLOCK); b * DELTA_BLOCK < end; b++) this.known[b >>> 5]! &= ~(1 << (b & 31));
  }

  /**
   * Finds the spans of BO bytes [offset, offset + length) that differ from this copy or are
   * not known, reading guest memory through `page` (BO page i's bytes). Calls `emit(start, end)`
   * for each, in order; emit returns the end it took (less than `end` when the frame is full),
   * and the walk stops there. Returns the BO offset up to which the range was handled; blocks
   * wholly inside that part are known afterwards (the caller has stored what it sent, see
   * store()).
   */
  diff(offset: number, length: number, pageSize: number, page: (i: number) => Uint8Array, emit: (start: number, end: number) => number): number {
    const end = offset + length;
    const known = this.known;
    const copy = this.words;
    let runStart = -1;
    let at = offset;
    while (at < end) {
      const p = Math.floor(at / pageSize);
      const base = p * pageSize;
      const pageEnd = Math.min(end, base + pageSize);
      const guest = page(p);
      // Pages and the copy are word aligned where the backing allows: whole blocks then compare
      // as four words, in this loop (it runs for every 16 bytes of every dirty page).
      const words = (guest.byteOffset & 3) === 0 ? new Int32Array(guest.buffer, guest.byteOffset, guest.length >>> 2) : null;
      while (at < pageEnd) {
        const b = (at / DELTA_BLOCK) | 0;
        const blockEnd = Math.min(pageEnd, (b + 1) * DELTA_BLOCK);
        let changed = ((known[b >>> 5]! >>> (b & 31)) & 1) === 0;
        if (!changed) {
          if (words !== null && blockEnd - at === DELTA_BLOCK) {
            const g = (at - base) >>> 2;
            const c = at >>> 2;
            changed = words[g] !== copy[c] || words[g + 1] !== copy[c + 1] || words[g + 2] !== copy[c + 2] || words[g + 3] !== copy[c + 3];
          } else {
            changed = !this.sameBytes(guest, at - base, at, blockEnd - at);
          }
        }
        if (changed) {
          if (runStart < 0) runStart = at;
        } else if (runStart >= 0) {
          const took = emit(runStart, at);
          if (took < at) return this.settle(offset, took);
          runStart = -1;
        }
        at = blockEnd;
      }
      // Runs end at page boundaries: emit copies from one page (adjacent spans merge in the table).
      if (runStart >= 0) {
        const took = emit(runStart, at);
        if (took < at) return this.settle(offset, took);
        runStart = -1;
      }
    }
    return this.settle(offset, end);
  }

  /** Record n bytes sent for BO offset `offset`, taken from the frame at frame[at..] (what the device gets). */
  store(offset: number, frame: Uint8Array, at: number, n: number): void {
    copyBytes(frame, at, this.bytes, offset, n);
  }

  /** Marks the blocks wholly inside [from, to) known; returns `to`. */
  private settle(from: number, to: number): number {
    const first = Math.ceil(from / DELTA_BLOCK);
    const last = Math.floor(to / DELTA_BLOCK) + (to === this.size ? 1 : 0); // exclusive; a BO's last block may be short
    for (let b = first; b < last && b * DELTA_BLOCK < to; b++) this.known[b >>> 5]! |= 1 << (b & 31);
    return to;
  }

  /** Whether `n` guest bytes at `off` of a page equal the copy at BO offset `at`. */
  private sameBytes(guest: Uint8Array, off: number, at: number, n: number): boolean {
    for (let i = 0; i < n; i++) if (guest[off + i] !== this.bytes[at + i]) return false;
    return true;
  }
}
