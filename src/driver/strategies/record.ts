import { Bitmap } from '../../core/index.js';

/**
 * The record every built-in tracker keeps (struct vmw_bo_dirty's bitmap and
 * bounds): bit i set ⇔ BO page i has data the device does not have yet;
 * [start, end) over-approximates the set bits, empty when `start >= end`.
 * Exported for trackers written outside the package: the take/clear/mark
 * half of the DirtyTracker contract is this, whatever the mechanism.
 */
export class DirtyRecord {
  readonly bitmap: Bitmap;
  start: number;
  end: number;

  /**
   * `clampWithMax`: take() walks up to max(range end, dirty end), as every
   * shipped vmwgfx did (DirtyConfig.transferClampsWithMax), and hands out
   * pages outside the range it was asked for.
   */
  constructor(readonly pages: number, private readonly clampWithMax = false) {
    this.bitmap = new Bitmap(pages);
    this.start = pages;
    this.end = 0;
  }

  get empty(): boolean {
    return this.end <= this.start;
  }

  /** Record one page. */
  set(page: number): void {
    if (this.bitmap.test(page)) return;
    this.bitmap.set(page);
    if (page < this.start) this.start = page;
    if (page + 1 > this.end) this.end = page + 1;
  }

  markDirty(from: number, to: number): void {
    if (from >= to) return;
    this.bitmap.setRange(from, to);
    this.start = Math.min(this.start, from);
    this.end = Math.max(this.end, to);
  }

  /** Move the set bits of [from, to) out, clearing them; emit(s, e) per run. */
  takeDirty(from: number, to: number, emit: (start: number, end: number) => void): number {
    if (from >= this.end || to <= this.start) return 0;
    let cur = Math.max(from, this.start);
    const lim = this.clampWithMax ? Math.max(to, this.end) : Math.min(to, this.end);
    let moved = 0;
    while (cur < lim) {
      const s = this.bitmap.findNextSet(cur, lim);
      if (s >= lim) break;
      const e = this.bitmap.findNextClear(s + 1, lim);
      this.bitmap.clearRange(s, e);
      emit(s, e);
      moved += e - s;
      cur = e + 1;
    }
    this.shrink(from, lim);
    return moved;
  }

  clearDirty(from: number, to: number): void {
    if (from >= this.end || to <= this.start) return;
    const s = Math.max(from, this.start);
    const e = Math.min(to, this.end);
    this.bitmap.clearRange(s, e);
    this.shrink(from, e);
  }

  peekDirty(out: Bitmap): void {
    const w = this.bitmap.words;
    for (let i = 0; i < w.length; i++) out.words[i] = out.words[i]! | w[i]!;
  }

  /** Shrink [start, end) after clearing [from, lim) when an edge falls inside it. */
  private shrink(from: number, lim: number): void {
    if (from <= this.start && this.start < lim) this.start = lim;
    if (from < this.end && this.end <= lim) this.end = from;
  }
}
