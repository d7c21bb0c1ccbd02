import { Bitmap } from '../core/index.js';
import { type Bo, BufferResource, SurfaceResource } from '../driver/index.js';

/** What the dashboard shows for one BO page; the numbers are the wire values (src/ui/page/views.js knows them). */
export const PAGE_CLEAN = 0;
/** Written by a CPU, not yet handed to a flush. */
export const PAGE_DIRTY = 1;
/** Carried by a flush whose fence has not signalled yet. */
export const PAGE_SENDING = 2;
/** Changed by the device; guest memory has not read it back yet. */
export const PAGE_DEVICE_NEWER = 3;

/**
 * The state of every page of one BO, as the dashboard draws it, and a heat
 * count of the frames that dirtied each page. Computed from what the driver
 * exposes, read-only: the tracker's bitmap, the D bits of the PTEs mapping the
 * BO (the PAGETABLE method's record before a scan harvests it), the dirty
 * state parked in resources, and the BO's deviceNewer bitmap. Which flush
 * carries a page the driver does not say; it is the flush that followed the
 * frame in which the page was last seen dirty, until that flush settles.
 * Flushes settle in submission order (fences do), so "in flight" is one
 * comparison with the last frame whose flush settled.
 */
export class PageMap {
  /** Frames that found the page dirty. */
  readonly heat: Uint32Array;
  /** The dirty set seen by the last observeFrame. */
  readonly lastDirty: Bitmap;
  /** Frame whose flush carries the page (the last frame that found it dirty), or -1. */
  private readonly carriedBy: Int32Array;
  /** The last frame whose flush settled. */
  private settledUpTo = -1;
  private readonly scratch: Bitmap;

  constructor(readonly bo: Bo) {
    this.heat = new Uint32Array(bo.pages);
    this.lastDirty = new Bitmap(bo.pages);
    this.carriedBy = new Int32Array(bo.pages).fill(-1);
    this.scratch = new Bitmap(bo.pages);
  }

  /**
   * Frame f is drawn and its flush about to start: record the dirty set (which that
   * flush carries) and the heat; returns the number of dirty pages.
   */
  observeFrame(f: number): number {
    readDirtyPages(this.bo, this.lastDirty);
    let n = 0;
    forEachSet(this.lastDirty, (p) => {
      this.heat[p]!++;
      this.carriedBy[p] = f;
      n++;
    });
    return n;
  }

  /**
   * The flush of frame f settled. What it carried is no longer in flight; when it
   * failed, the driver keeps that dirty, which readDirtyPages sees from then on.
   */
  flushSettled(f: number): void {
    if (f > this.settledUpTo) this.settledUpTo = f;
  }

  /** Every page's state now (PAGE_* values), into out (one byte per page). */
  states(out: Uint8Array): Uint8Array {
    readDirtyPages(this.bo, this.scratch);
    const newer = this.bo.deviceNewer;
    for (let p = 0; p < out.length; p++) {
      out[p] = newer.test(p) ? PAGE_DEVICE_NEWER : this.scratch.test(p) ? PAGE_DIRTY : this.carriedBy[p]! > this.settledUpTo ? PAGE_SENDING : PAGE_CLEAN;
    }
    return out;
  }
}

/** Call fn for every set bit, a word at a time. */
export function forEachSet(b: Bitmap, fn: (i: number) => void): void {
  const w = b.words;
  for (let i = 0; i < w.length; i++) {
    let v = w[i]!;
    while (v !== 0) {
      const low = v & -v;
      fn(i * 32 + 31 - Math.clz32(low));
      v ^= low;
    }
  }
}

/**
 * The BO pages with data the device does not have yet, as the driver holds them
 * now: what its tracker knows (DirtyTracker.peekDirty: the record, and what only
 * the PTEs hold until the next scan), and what resources still hold; an untracked BO
 * counts every page, since nothing tells which of them changed.
 */
export function readDirtyPages(bo: Bo, out: Bitmap): Bitmap {
  const t = bo.tracker;
  if (t === null) {
    out.setRange(0, bo.pages);
    return out;
  }
  out.clearAll();
  t.peekDirty(out);
  for (const res of bo.resources) {
    if (res instanceof BufferResource) {
      for (const [s, e] of res.dirtyRanges()) out.setRange(...bo.pageSpan(s, e - s));
    } else if (res instanceof SurfaceResource) {
      const rowBytes = res.width * res.bytesPerPixel;
      for (const b of res.dirtyBoxes()) {
        for (let z = b.z; z < b.z + b.d; z++) {
          for (let y = b.y; y < b.y + b.h; y++) {
            const s = res.offset + z * res.imagePitch + y * res.rowPitch + b.x * res.bytesPerPixel;
            out.setRange(...bo.pageSpan(s, Math.min(b.w * res.bytesPerPixel, rowBytes)));
          }
        }
      }
    }
  }
  return out;
}

