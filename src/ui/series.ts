import { percentile } from '../workload/stats.js';

/**
 * The per-frame time series of a run, kept twice and bounded both times:
 * the recent rows as they came (what live dashboards fetch by sequence
 * number), and the whole run, halved in resolution whenever it fills up (what
 * the report shows). Columnar, since that is the shape the charts take.
 */

/** How two neighbouring rows become one when the history is halved. */
export type Merge = 'first' | 'last' | 'mean' | 'max' | 'sum';

export interface Column {
  name: string;
  merge: Merge;
}

/** One value per column; null where there is none (a failed flush has no latency). */
export type Row = ReadonlyArray<number | null>;

/** Columns of values, one array per column, plus how many frames each row stands for. */
export interface Columns {
  names: string[];
  values: Array<Array<number | null>>;
  frames: number[];
}

export class FrameSeries {
  /** Rows appended so far; the next row gets this sequence number. */
  appended = 0;
  private readonly history: Columns;
  /** Ring of the last `recentRows` rows; row with sequence s lives at s % recentRows. */
  private readonly recent: Row[] = [];

  constructor(
    readonly columns: readonly Column[],
    readonly maxHistoryRows = 1 << 15,
    readonly recentRows = 3600,
  ) {
    if (maxHistoryRows < 2 || maxHistoryRows % 2 !== 0) throw new RangeError('maxHistoryRows must be even and at least 2');
    this.history = { names: columns.map((c) => c.name), values: columns.map(() => []), frames: [] };
  }

  append(row: Row): void {
    if (row.length !== this.columns.length) throw new RangeError(`a row has ${this.columns.length} values, got ${row.length}`);
    this.recent[this.appended % this.recentRows] = row;
    this.appended++;
    if (this.history.frames.length === this.maxHistoryRows) this.halve();
    row.forEach((v, i) => this.history.values[i]!.push(v));
    this.history.frames.push(1);
  }

  /**
   * Recent rows from sequence number `from` on, as columns; `from` is clamped to the
   * oldest row still held (a client that fell behind skips what it missed).
   */
  since(from: number): { from: number; to: number; columns: Columns } {
    const start = Math.max(from, this.appended - this.recentRows, 0);
    const values = this.columns.map(() => [] as Array<number | null>);
    const frames: number[] = [];
    for (let s = start; s < this.appended; s++) {
      const row = this.recent[s % this.recentRows]!;
      row.forEach((v, i) => values[i]!.push(v));
      frames.push(1);
    }
    return { from: start, to: this.appended, columns: { names: this.history.names, values, frames } };
  }

  /** The whole run, at whatever resolution it is now held (each row stands for `frames[i]` frames). */
  all(): Columns {
    return { names: this.history.names, values: this.history.values.map((v) => v.slice()), frames: this.history.frames.slice() };
  }

  /** Merge row pairs: the history keeps covering the whole run in half the rows. */
  private halve(): void {
    const h = this.history;
    const n = h.frames.length;
    const frames: number[] = [];
    for (let i = 0; i < n; i += 2) frames.push(h.frames[i]! + h.frames[i + 1]!);
    h.values = h.values.map((col, c) => {
      const merge = this.columns[c]!.merge;
      const out: Array<number | null> = [];
      for (let i = 0; i < n; i += 2) out.push(mergePair(merge, col[i]!, col[i + 1]!, h.frames[i]!, h.frames[i + 1]!));
      return out;
    });
    h.frames = frames;
  }
}

function mergePair(merge: Merge, a: number | null, b: number | null, wa: number, wb: number): number | null {
  if (merge === 'first') return a;
  if (merge === 'last') return b;
  if (a === null) return b;
  if (b === null) return a;
  switch (merge) {
    case 'max':
      return Math.max(a, b);
    case 'sum':
      return a + b;
    case 'mean':
      return (a * wa + b * wb) / (wa + wb);
  }
}

/** Percentiles (nearest rank, as the run's summary computes them) of the last `size` values added. */
export class RollingPercentiles {
  /** The window in arrival order, and the same values kept sorted (a binary-search insert per value, no sort per query). */
  private readonly window: number[] = [];
  private readonly sorted: number[] = [];

  constructor(readonly size = 60) {}

  add(v: number): void {
    this.window.push(v);
    this.sorted.splice(lowerBound(this.sorted, v), 0, v);
    if (this.window.length > this.size) this.sorted.splice(lowerBound(this.sorted, this.window.shift()!), 1);
  }

  get(...ps: number[]): Array<number | null> {
    if (this.sorted.length === 0) return ps.map(() => null);
    return ps.map((p) => percentile(this.sorted, p));
  }
}

/** First index of a sorted array whose value is not below v. */
function lowerBound(a: readonly number[], v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
