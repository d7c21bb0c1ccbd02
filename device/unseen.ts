// Device writes a driver has not seen yet (the `seen` field, docs/protocol.md §6.5).
//
// The driver tracks CPU writes per page, so an upload carries whole pages as guest memory had
// them when the driver read them. A device (GPU) write announced after that read, to other bytes
// of the same page, would be overwritten when the upload is applied later. Each session numbers
// its deviceWrite announcements; a frame that says it had seen announcements up to `seen` gets
// the bytes of every later announced write kept across its application.
import { MAX_UNSEEN_DEVICE_WRITES, type DataRange } from '../protocol/index.js';

interface Announced {
  n: number;
  bo: number;
  start: number;
  end: number;
}

export class UnseenWrites {
  private announced = 0;
  /** Announced ranges, oldest first, all with n > the highest seen acknowledged so far. */
  private log: Announced[] = [];

  /** Count a deviceWrite announcement and remember its ranges. */
  announce(bo: number, ranges: readonly DataRange[]): void {
    const n = ++this.announced;
    for (const [offset, data] of ranges) this.log.push({ n, bo, start: offset, end: offset + data.length });
    // Bounded: a sender that never acknowledges loses protection for the oldest writes only.
    if (this.log.length > MAX_UNSEEN_DEVICE_WRITES) this.log.splice(0, this.log.length - MAX_UNSEEN_DEVICE_WRITES);
  }

  /** The sender has processed announcements up to `seen`: they need no protection any more. */
  acknowledge(seen: number): void {
    let i = 0;
    while (i < this.log.length && this.log[i]!.n <= seen) i++;
    if (i > 0) this.log.splice(0, i);
  }

  /**
   * The BO was destroyed: its announced writes die with it, so a BO later defined with the same
   * id (maybe smaller) is never "protected" with bytes of the old one.
   */
  forget(bo: number): void {
    this.log = this.log.filter((e) => e.bo !== bo);
  }

  /**
   * Run `apply` (which writes into `bytes`, or throws before writing anything) while keeping
   * the bytes of device writes to `bo` announced after `seen`. Without `seen` (a sender that
   * does not use it) the data is applied as it is.
   */
  applyKeeping(bo: number, bytes: Uint8Array | undefined, seen: number | undefined, apply: () => number): number {
    if (seen === undefined || bytes === undefined) return apply();
    this.acknowledge(seen);
    if (this.log.length === 0) return apply(); // nothing announced is unacknowledged (the usual case)
    const keep = this.log.filter((e) => e.bo === bo);
    if (keep.length === 0) return apply();
    const saved = keep.map((e) => bytes.slice(e.start, e.end));
    const written = apply();
    keep.forEach((e, i) => bytes.set(saved[i]!, e.start));
    return written;
  }
}
