// Device copies of BOs and surfaces. Memory accounts for the whole device (limits are
// device-wide); a Namespace holds one session's BOs and surfaces, so ids of different
// sessions never meet, and keeps the session within its share (maxSession*). Every operation validates the whole command before changing any byte
// (a rejected command leaves no partial effect) and reports problems as ProtocolError.
import {
  decodeSpanData,
  isCodec,
  pageCount,
  pageDigests,
  ProtocolError,
  spanCount,
  SpanTable,
  type BoxData,
  type Codec,
  type DataRange,
  type DefineSurface,
  type Span,
} from '../protocol/index.js';
import type { DeviceLimits } from './options.js';
import { checkBoxes, checkLayout, copyBoxes, type SurfaceLayout } from './layout.js';

/** Per-message encoding overhead allowed for when sizing a reply against maxMessageSize. */
const REPLY_HEADER_BYTES = 64;
/** Upper bound of the MessagePack bytes around one [offset, bin] range. */
const RANGE_OVERHEAD_BYTES = 16;

export class Memory {
  bos = 0;
  bytes = 0;
  surfaces = 0;
  constructor(readonly limits: DeviceLimits) {}

  reset(): void {
    this.bos = this.bytes = this.surfaces = 0;
  }
}

export interface Surface extends SurfaceLayout {
  readonly sid: number;
  readonly bo: number;
}

interface Bo {
  readonly data: Uint8Array;
  /** Surfaces defined over this BO; destroyBo is refused while non-zero. */
  surfaces: number;
}

export class Namespace {
  private readonly bos = new Map<number, Bo>();
  private readonly surfaces = new Map<number, Surface>();
  /** Bytes of this namespace's BOs. */
  bytes = 0;

  constructor(private readonly memory: Memory) {}

  get boCount(): number {
    return this.bos.size;
  }
  get surfaceCount(): number {
    return this.surfaces.size;
  }
  boIds(): number[] {
    return [...this.bos.keys()];
  }
  surfaceList(): Surface[] {
    return [...this.surfaces.values()];
  }

  defineBo(id: number, size: number, seq?: number): void {
    const { limits } = this.memory;
    if (this.bos.has(id)) throw new ProtocolError('exists', `BO ${id} already defined`, seq);
    if (size === 0 || size > limits.maxBoSize) {
      throw new ProtocolError('limit', `BO size ${size} not in [1, maxBoSize ${limits.maxBoSize}]`, seq);
    }
    if (this.bos.size + 1 > limits.maxSessionBos) throw new ProtocolError('limit', `maxSessionBos ${limits.maxSessionBos} reached`, seq);
    if (this.memory.bos + 1 > limits.maxBos) throw new ProtocolError('limit', `maxBos ${limits.maxBos} reached`, seq);
    if (this.bytes + size > limits.maxSessionBytes) {
      throw new ProtocolError('limit', `maxSessionBytes ${limits.maxSessionBytes} would be exceeded`, seq);
    }
    if (this.memory.bytes + size > limits.maxTotalBytes) {
      throw new ProtocolError('limit', `maxTotalBytes ${limits.maxTotalBytes} would be exceeded`, seq);
    }
    this.bos.set(id, { data: new Uint8Array(size), surfaces: 0 });
    this.memory.bos++;
    this.memory.bytes += size;
    this.bytes += size;
  }

  destroyBo(id: number, seq?: number): void {
    const bo = this.bo(id, seq);
    if (bo.surfaces > 0) throw new ProtocolError('in_use', `BO ${id} backs ${bo.surfaces} surface(s)`, seq);
    this.bos.delete(id);
    this.memory.bos--;
    this.memory.bytes -= bo.data.length;
    this.bytes -= bo.data.length;
  }

  defineSurface(m: DefineSurface): void {
    if (this.surfaces.has(m.sid)) throw new ProtocolError('exists', `surface ${m.sid} already defined`, m.seq);
    const bo = this.bo(m.bo, m.seq);
    checkLayout(m, bo.data.length, m.seq);
    const { maxSurfaces, maxSessionSurfaces } = this.memory.limits;
    if (this.surfaces.size + 1 > maxSessionSurfaces) throw new ProtocolError('limit', `maxSessionSurfaces ${maxSessionSurfaces} reached`, m.seq);
    if (this.memory.surfaces + 1 > maxSurfaces) throw new ProtocolError('limit', `maxSurfaces ${maxSurfaces} reached`, m.seq);
    const { sid, offset, width, height, depth, bytesPerPixel, rowPitch, imagePitch } = m;
    this.surfaces.set(sid, { sid, bo: m.bo, offset, width, height, depth, bytesPerPixel, rowPitch, imagePitch });
    bo.surfaces++;
    this.memory.surfaces++;
  }

  destroySurface(sid: number, seq?: number): void {
    const s = this.surface(sid, seq);
    this.surfaces.delete(sid);
    this.bos.get(s.bo)!.surfaces--;
    this.memory.surfaces--;
  }

  /** Applies [offset, data] ranges; returns the bytes written. */
  write(id: number, ranges: readonly DataRange[], seq?: number): number {
    const bo = this.bo(id, seq);
    this.checkCount(ranges.length, seq);
    let bytes = 0;
    for (let i = 0; i < ranges.length; i++) {
      const [offset, data] = ranges[i]!;
      this.checkSpan(bo, offset, data.length, i, seq);
      bytes += data.length;
    }
    for (const [offset, data] of ranges) bo.data.set(data, offset);
    return bytes;
  }

  /**
   * Applies a writeSpans frame (docs/protocol.md §6.15) straight from the received bytes: the
   * table is read in place and each span is copied once from `data` (or its decoded form)
   * into the BO. Everything is checked before the first byte changes. `codecs`: the codecs
   * this device offers. Returns the bytes written.
   */
  writeSpans(id: number, table: Uint8Array, data: Uint8Array, codec: string, codecs: ReadonlySet<Codec>, seq?: number): number {
    const bo = this.bo(id, seq);
    const n = spanCount(table);
    if (n < 0) throw new ProtocolError('bad_message', `writeSpans.spans: ${table.length} bytes is not a whole number of 8-byte entries`, seq);
    this.checkCount(n, seq);
    const spans = new SpanTable(table);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const length = spans.length(i);
      this.checkSpan(bo, spans.offset(i), length, i, seq);
      total += length;
    }
    const { maxMessageSize } = this.memory.limits;
    if (total > maxMessageSize) throw new ProtocolError('limit', `spans of ${total} bytes exceed maxMessageSize ${maxMessageSize}`, seq);
    if (!isCodec(codec) || !codecs.has(codec)) throw new ProtocolError('bad_message', `writeSpans.codec: '${codec.slice(0, 20)}' is not offered by this device`, seq);
    const bytes = decodeSpanData(codec, data, total);
    if (typeof bytes === 'string') throw new ProtocolError('bad_message', `writeSpans.data: ${bytes}`, seq);
    for (let i = 0, at = 0; i < n; i++) {
      const length = spans.length(i);
      bo.data.set(length === bytes.length ? bytes : bytes.subarray(at, at + length), spans.offset(i));
      at += length;
    }
    return total;
  }

  /** Applies surface boxes; returns the bytes written. */
  writeBoxes(sid: number, boxes: readonly BoxData[], seq?: number): number {
    const s = this.surface(sid, seq);
    this.checkCount(boxes.length, seq);
    const bytes = checkBoxes(s, boxes, seq);
    copyBoxes(s, boxes, this.bos.get(s.bo)!.data);
    return bytes;
  }

  /**
   * Views of the requested spans. They alias the device copy: encode them before the BO
   * can change again (the session encodes replies synchronously).
   */
  read(id: number, spans: readonly Span[], seq?: number): DataRange[] {
    const bo = this.bo(id, seq);
    this.checkCount(spans.length, seq);
    let bytes = REPLY_HEADER_BYTES;
    for (let i = 0; i < spans.length; i++) {
      const [offset, length] = spans[i]!;
      this.checkSpan(bo, offset, length, i, seq);
      bytes += length + RANGE_OVERHEAD_BYTES;
    }
    const { maxMessageSize } = this.memory.limits;
    if (bytes > maxMessageSize) {
      throw new ProtocolError('limit', `reply of ~${bytes} bytes would exceed maxMessageSize ${maxMessageSize}`, seq);
    }
    return spans.map(([offset, length]): DataRange => [offset, bo.data.subarray(offset, offset + length)]);
  }

  digest(id: number, offset: number, length: number, pageSize: number, seq?: number): Uint8Array {
    const bo = this.bo(id, seq);
    if (offset % pageSize !== 0) {
      throw new ProtocolError('misaligned', `digest offset ${offset} is not a multiple of pageSize ${pageSize}`, seq);
    }
    this.checkSpan(bo, offset, length, 0, seq);
    this.checkCount(pageCount(length, pageSize), seq);
    return pageDigests(bo.data.subarray(offset, offset + length), pageSize);
  }

  /** The live bytes of a BO (device internal), or undefined. */
  bytesOf(id: number): Uint8Array | undefined {
    return this.bos.get(id)?.data;
  }

  /** The BO a surface lives in, or undefined. */
  surfaceBo(sid: number): number | undefined {
    return this.surfaces.get(sid)?.bo;
  }

  /** A copy of a BO's device bytes (for inspection), or undefined. */
  snapshot(id: number): Uint8Array | undefined {
    return this.bos.get(id)?.data.slice();
  }

  /** Frees everything (session end or device restart). */
  release(): void {
    this.memory.bos -= this.bos.size;
    this.memory.bytes -= this.bytes;
    this.memory.surfaces -= this.surfaces.size;
    this.bos.clear();
    this.surfaces.clear();
    this.bytes = 0;
  }

  private bo(id: number, seq?: number): Bo {
    const bo = this.bos.get(id);
    if (bo === undefined) throw new ProtocolError('unknown_bo', `no BO ${id}`, seq);
    return bo;
  }

  private surface(sid: number, seq?: number): Surface {
    const s = this.surfaces.get(sid);
    if (s === undefined) throw new ProtocolError('unknown_surface', `no surface ${sid}`, seq);
    return s;
  }

  private checkCount(n: number, seq?: number): void {
    const { maxRanges } = this.memory.limits;
    if (n > maxRanges) throw new ProtocolError('limit', `${n} entries exceed maxRanges ${maxRanges}`, seq);
  }

  private checkSpan(bo: Bo, offset: number, length: number, i: number, seq?: number): void {
    if (offset + length > bo.data.length) {
      throw new ProtocolError('out_of_range', `range ${i} [${offset}, ${offset + length}) outside BO of ${bo.data.length} bytes`, seq);
    }
  }
}
