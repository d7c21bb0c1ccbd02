import { InvalidArgumentError, requireInteger } from '../core/index.js';
import type { Bo } from './bo.js';
import { Definition } from './definition.js';
import type { DeviceError } from './errors.js';
import { Resource, type SurfaceLike, type Upload } from './resource.js';

export interface SurfaceLayout {
  width: number;
  height: number;
  /** 1 for 2D. */
  depth: number;
  bytesPerPixel: number;
  /** Bytes from one row to the next (default width · bytesPerPixel). */
  rowPitch?: number;
  /** Bytes from one z-slice to the next (default rowPitch · height). */
  imagePitch?: number;
}

/** A dirty box within one z-slice run; `d > 1` only for whole slices. */
interface Box { x: number; y: number; z: number; w: number; h: number; d: number }

/**
 * A 2D/3D image with pitches in a BO (one subresource). Dirty BO byte ranges
 * become boxes: a range within one row gives a
 * partial-row box, a range over several rows of a slice a full-width band,
 * whole slices a full box. Boxes of a slice that touch or overlap in rows are
 * merged to their bounding box, so the union never loses a part (the flaw of
 * bug C5 in docs/fidelity.md, where lowering the start kept the old length, cannot happen here).
 */
export class SurfaceResource extends Resource implements SurfaceLike {
  readonly width: number;
  readonly height: number;
  readonly depth: number;
  readonly bytesPerPixel: number;
  readonly rowPitch: number;
  readonly imagePitch: number;
  /** Whether the device knows this surface (defineSurface). */
  readonly definition = new Definition();
  private boxes: Box[] = [];

  constructor(bo: Bo, offset: number, readonly sid: number, layout: SurfaceLayout) {
    const rowPitch = layout.rowPitch ?? layout.width * layout.bytesPerPixel;
    const imagePitch = layout.imagePitch ?? rowPitch * layout.height;
    super(bo, offset, imagePitch * (layout.depth - 1) + rowPitch * (layout.height - 1) + layout.width * layout.bytesPerPixel);
    requireInteger('surface width', layout.width, 1);
    requireInteger('surface height', layout.height, 1);
    requireInteger('surface depth', layout.depth, 1);
    requireInteger('bytes per pixel', layout.bytesPerPixel, 1, 64);
    if (rowPitch < layout.width * layout.bytesPerPixel || imagePitch < rowPitch * layout.height) {
      throw new InvalidArgumentError('surface pitches are smaller than a row / an image');
    }
    this.width = layout.width;
    this.height = layout.height;
    this.depth = layout.depth;
    this.bytesPerPixel = layout.bytesPerPixel;
    this.rowPitch = rowPitch;
    this.imagePitch = imagePitch;
  }

  override deviceRefusal(): DeviceError | null {
    return super.deviceRefusal() ?? this.definition.refusal;
  }

  dirtyRangeAdd(start: number, end: number): void {
    let s = Math.max(start, this.offset) - this.offset;
    const e = Math.min(end, this.offset + this.size) - this.offset;
    while (s < e) {
      const z = Math.floor(s / this.imagePitch);
      const sliceEnd = Math.min(e, (z + 1) * this.imagePitch);
      this.addInSlice(z, s - z * this.imagePitch, sliceEnd - z * this.imagePitch);
      s = sliceEnd;
    }
  }

  hasDirty(): boolean {
    return this.boxes.length > 0;
  }

  markAllDirty(): void {
    this.boxes = [{ x: 0, y: 0, z: 0, w: this.width, h: this.height, d: this.depth }];
  }

  takeUploads(): Upload[] {
    const out: Upload[] = this.boxes.map((b) => ({ kind: 'box' as const, res: this, ...b }));
    this.boxes = [];
    return out;
  }

  /** Current dirty boxes, for inspection. */
  dirtyBoxes(): ReadonlyArray<Readonly<Box>> {
    return this.boxes;
  }

  /** Bytes [s, e) relative to slice z. */
  private addInSlice(z: number, s: number, e: number): void {
    const rowBytes = this.width * this.bytesPerPixel;
    const y1 = Math.floor(s / this.rowPitch);
    const yLast = Math.min(this.height - 1, Math.floor((e - 1) / this.rowPitch));
    if (y1 > yLast || y1 >= this.height) return;
    let box: Box;
    if (y1 === yLast) {
      const b0 = s - y1 * this.rowPitch;
      const b1 = Math.min(e - y1 * this.rowPitch, rowBytes);
      if (b0 >= rowBytes) return; // row padding only
      const x = Math.floor(b0 / this.bytesPerPixel);
      box = { x, y: y1, z, w: Math.ceil(b1 / this.bytesPerPixel) - x, h: 1, d: 1 };
    } else {
      box = { x: 0, y: y1, z, w: this.width, h: yLast - y1 + 1, d: 1 };
    }
    this.merge(box);
  }

  /** Union with every box of the same slice it touches (rows overlapping or adjacent). */
  private merge(box: Box): void {
    let b = box;
    const rest: Box[] = [];
    for (const o of this.boxes) {
      const sameSlices = o.z === b.z && o.d === 1 && b.d === 1;
      const touches = sameSlices && o.y <= b.y + b.h && b.y <= o.y + o.h &&
        (o.y + o.h === b.y || b.y + b.h === o.y ? o.x === 0 && o.w === this.width && b.x === 0 && b.w === this.width : true);
      if (!touches) {
        rest.push(o);
        continue;
      }
      const x = Math.min(o.x, b.x);
      const y = Math.min(o.y, b.y);
      b = { x, y, z: b.z, w: Math.max(o.x + o.w, b.x + b.w) - x, h: Math.max(o.y + o.h, b.y + b.h) - y, d: 1 };
    }
    rest.push(b);
    this.boxes = rest;
  }
}
