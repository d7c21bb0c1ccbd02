import { InvalidArgumentError } from '../core/index.js';
import type { Bo } from './bo.js';
import type { DeviceError } from './errors.js';

/** A piece of upload work: bytes of a BO, or a box of a surface. */
export type Upload =
  | { kind: 'range'; res: Resource; bo: Bo; offset: number; length: number }
  | { kind: 'box'; res: SurfaceLike; x: number; y: number; z: number; w: number; h: number; d: number };

/** What the writeback engine needs of a surface to pack a box's pixels. */
export interface SurfaceLike {
  readonly bo: Bo;
  readonly sid: number;
  readonly offset: number;
  readonly bytesPerPixel: number;
  readonly rowPitch: number;
  readonly imagePitch: number;
  dirtyRangeAdd(start: number, end: number): void;
}

/**
 * A device object backed by bytes [offset, offset + size) of a BO (offset page
 * aligned). Dirty pages move from the BO's tracker into the resource
 * (dirtyRangeAdd, in BO byte units); takeUploads turns and clears them into
 * upload work.
 */
export abstract class Resource {
  constructor(readonly bo: Bo, readonly offset: number, readonly size: number) {
    const ps = bo.space.pageSize;
    if (!Number.isInteger(offset) || offset < 0 || offset % ps !== 0) throw new InvalidArgumentError(`resource offset ${offset} must be page aligned`);
    if (!Number.isInteger(size) || size < 1 || offset + size > bo.size) {
      throw new InvalidArgumentError(`resource [${offset}, ${offset + size}) does not fit BO ${bo.id} of ${bo.size} bytes`);
    }
  }

  /** BO pages [rs, re) the resource overlaps. */
  pageSpan(): [number, number] {
    return this.bo.pageSpan(this.offset, this.size);
  }

  /**
   * Why the device cannot take uploads of this resource now (the refused
   * define of its BO, or of itself), or null when it can.
   */
  deviceRefusal(): DeviceError | null {
    return this.bo.definition.refusal;
  }

  abstract dirtyRangeAdd(start: number, end: number): void;
  abstract hasDirty(): boolean;
  /** Everything needs uploading (device lost its copy). */
  abstract markAllDirty(): void;
  abstract takeUploads(): Upload[];
}

/** A plain buffer: dirty state is a sorted list of disjoint byte ranges. */
export class BufferResource extends Resource {
  /** Flattened [s0, e0, s1, e1, ...], sorted, disjoint, non-adjacent. */
  private ranges: number[] = [];

  dirtyRangeAdd(start: number, end: number): void {
    const s = Math.max(start, this.offset);
    const e = Math.min(end, this.offset + this.size);
    if (s >= e) return;
    const out: number[] = [];
    let ns = s;
    let ne = e;
    let placed = false;
    for (let i = 0; i < this.ranges.length; i += 2) {
      const rs = this.ranges[i]!;
      const re = this.ranges[i + 1]!;
      if (re < ns) out.push(rs, re);
      else if (rs > ne) {
        if (!placed) out.push(ns, ne), (placed = true);
        out.push(rs, re);
      } else {
        ns = Math.min(ns, rs);
        ne = Math.max(ne, re);
      }
    }
    if (!placed) out.push(ns, ne);
    this.ranges = out;
  }

  hasDirty(): boolean {
    return this.ranges.length > 0;
  }

  markAllDirty(): void {
    this.ranges = [this.offset, this.offset + this.size];
  }

  takeUploads(): Upload[] {
    const out: Upload[] = [];
    for (let i = 0; i < this.ranges.length; i += 2) {
      out.push({ kind: 'range', res: this, bo: this.bo, offset: this.ranges[i]!, length: this.ranges[i + 1]! - this.ranges[i]! });
    }
    this.ranges = [];
    return out;
  }

  /** Dirty byte ranges, for inspection. */
  dirtyRanges(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = 0; i < this.ranges.length; i += 2) out.push([this.ranges[i]!, this.ranges[i + 1]!]);
    return out;
  }
}
