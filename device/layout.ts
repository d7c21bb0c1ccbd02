// Surface layout in the BO (one mip, one layer): texel (x, y, z) lives
// at offset + z·imagePitch + y·rowPitch + x·bytesPerPixel. Boxes arrive tightly packed
// (x fastest, then y, then z) and are copied row by row with TypedArray.set.
import { ProtocolError, type BoxData, type DefineSurface } from '../protocol/index.js';

export type SurfaceLayout = Pick<
  DefineSurface,
  'offset' | 'width' | 'height' | 'depth' | 'bytesPerPixel' | 'rowPitch' | 'imagePitch'
>;

/** Largest bytes per pixel accepted (a 4×32-bit-float texel is 16). */
export const MAX_BYTES_PER_PIXEL = 16;

/** Throws ProtocolError unless the layout is well-formed and lies inside a BO of boSize bytes. */
export function checkLayout(s: SurfaceLayout, boSize: number, seq?: number): void {
  const { width, height, depth, bytesPerPixel: bpp, rowPitch, imagePitch } = s;
  if (width === 0 || height === 0 || depth === 0) {
    throw new ProtocolError('bad_message', `surface ${width}x${height}x${depth} has an empty dimension`, seq);
  }
  if (bpp === 0 || bpp > MAX_BYTES_PER_PIXEL) {
    throw new ProtocolError('bad_message', `bytesPerPixel ${bpp} not in [1, ${MAX_BYTES_PER_PIXEL}]`, seq);
  }
  if (rowPitch < width * bpp) {
    throw new ProtocolError('bad_message', `rowPitch ${rowPitch} < width·bytesPerPixel ${width * bpp}`, seq);
  }
  if (imagePitch < rowPitch * height) {
    throw new ProtocolError('bad_message', `imagePitch ${imagePitch} < rowPitch·height ${rowPitch * height}`, seq);
  }
  const end = s.offset + (depth - 1) * imagePitch + (height - 1) * rowPitch + width * bpp;
  if (end > boSize) {
    throw new ProtocolError('out_of_range', `surface ends at byte ${end}, BO has ${boSize}`, seq);
  }
}

/** Throws ProtocolError unless every box lies inside the surface and carries w·h·d·bpp bytes. */
export function checkBoxes(s: SurfaceLayout, boxes: readonly BoxData[], seq?: number): number {
  let bytes = 0;
  for (let i = 0; i < boxes.length; i++) {
    const [x, y, z, w, h, d, data] = boxes[i]!;
    if (x + w > s.width || y + h > s.height || z + d > s.depth) {
      throw new ProtocolError(
        'out_of_range',
        `box ${i} (${x},${y},${z} ${w}x${h}x${d}) outside surface ${s.width}x${s.height}x${s.depth}`,
        seq,
      );
    }
    const want = w * h * d * s.bytesPerPixel;
    if (data.length !== want) {
      throw new ProtocolError('out_of_range', `box ${i} carries ${data.length} bytes, needs ${want}`, seq);
    }
    bytes += want;
  }
  return bytes;
}

/** Copies checked boxes into the BO bytes `dst`. One TypedArray.set per row. */
export function copyBoxes(s: SurfaceLayout, boxes: readonly BoxData[], dst: Uint8Array): void {
  for (const [x, y, z, w, h, d, data] of boxes) {
    const rowBytes = w * s.bytesPerPixel;
    let src = 0;
    for (let k = 0; k < d; k++) {
      let at = s.offset + (z + k) * s.imagePitch + y * s.rowPitch + x * s.bytesPerPixel;
      for (let j = 0; j < h; j++, at += s.rowPitch, src += rowBytes) {
        dst.set(data.subarray(src, src + rowBytes), at);
      }
    }
  }
}
