// @ts-check
// A dirty-tracking strategy written outside the package, against its published types only:
// the PAGETABLE method (writable PTEs, hardware dirty bits cleaned and recorded at every scan),
// but recording in 64 KiB chunks. A page written marks its whole 16-page chunk dirty, so
// uploads are fewer, longer DMA ranges, at the price of sending clean neighbours.
//
//   vgpu-dirty run --strategy ./examples/custom-strategy/chunked-tracker.mjs
import { Bitmap, DirtyRecord, PTE_DIRTY, cleanRecordSharedMappingRange, walkPageMapping } from 'vgpu-dirty';

/** Pages per chunk: 16 × 4 KiB. */
export const CHUNK = 16;

/** @typedef {import('vgpu-dirty').DirtyTracker} DirtyTracker */

/** @implements {DirtyTracker} */
class ChunkedTracker extends DirtyRecord {
  method = 'chunked';
  switches = 0;

  /** @param {import('vgpu-dirty').Bo} bo */
  constructor(bo) {
    super(bo.pages);
    this.bo = bo;
    /** Where a clean-and-record puts the pages it found, before they become chunks. */
    this.found = new Bitmap(bo.pages);
  }

  /** PTEs are writable: the hardware D bits are the record until a scan. */
  mapWritable() {
    return true;
  }

  /** Never called for writable PTEs; nothing to do. */
  mkwrite() {}

  /** Clean every D bit of every mapping of the BO into chunks, holding the reservation the fault handlers take. */
  scan() {
    return this.bo.reservation.hold('scan', () => ({ found: this.collect(0, this.pages), switchedTo: null }));
  }

  /**
   * The PTEs of [from, to) are about to go, and their D bits with them: collect those first.
   * @param {number} from
   * @param {number} to
   */
  beforeUnmap(from, to) {
    if (from < to) this.bo.reservation.hold('pre-unmap', () => this.collect(from, to));
  }

  /**
   * The record, plus the D bits a scan would collect now (as chunks), changing nothing.
   * @param {Bitmap} out
   */
  peekDirty(out) {
    super.peekDirty(out);
    const bo = this.bo;
    walkPageMapping(bo.mapping, bo.offset, bo.pages, {
      pteMask: PTE_DIRTY,
      pteEntry: (_table, _index, vpn, walk) => {
        const page = walk.vma.pgoff + vpn - walk.vma.start / walk.vma.mm.pageSize - bo.offset;
        const first = page - (page % CHUNK);
        out.setRange(first, Math.min(first + CHUNK, this.pages));
        return 0;
      },
    }, null);
  }

  /**
   * Clean-and-record [from, to) with the kernel helper, then widen each page found to its chunk.
   * @param {number} from
   * @param {number} to
   */
  collect(from, to) {
    const range = { start: this.pages, end: 0 };
    const n = cleanRecordSharedMappingRange(this.bo.mapping, this.bo.offset + from, to - from, this.bo.offset, this.found, range);
    for (let p = this.found.findNextSet(range.start, range.end); p < range.end; p = this.found.findNextSet(p + 1, range.end)) {
      const first = p - (p % CHUNK);
      this.markDirty(first, Math.min(first + CHUNK, this.pages));
    }
    if (range.start < range.end) this.found.clearRange(range.start, range.end);
    return n;
  }
}

/** @type {import('vgpu-dirty').DirtyStrategy} */
const chunked = {
  name: 'chunked',
  description: 'PAGETABLE dirty bits, recorded and uploaded in 64 KiB chunks',
  backing: 'device',
  createTracker: (bo) => new ChunkedTracker(bo),
};

export default chunked;
