// writeSpans (docs/protocol.md §6.15): a table of byte spans of one BO and their bytes back
// to back, optionally compressed. Both ends use these helpers, so the table layout and the
// codecs are defined once.
import { constants as zlibConstants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { CODECS, SPAN_ENTRY_BYTES, type Codec } from './constants.js';

/** Spans in a table of `bytes` bytes, or -1 when the length is not a whole number of entries. */
export function spanCount(table: Uint8Array): number {
  return table.length % SPAN_ENTRY_BYTES === 0 ? table.length / SPAN_ENTRY_BYTES : -1;
}

/**
 * Reads entry i of a span table (offset, length: u32 big-endian) without allocating (not even
 * a DataView: making one costs more than reading a 1-page sync's single entry).
 */
export class SpanTable {
  readonly count: number;

  constructor(readonly bytes: Uint8Array) {
    this.count = Math.floor(bytes.length / SPAN_ENTRY_BYTES);
  }

  offset(i: number): number {
    return this.u32(i * SPAN_ENTRY_BYTES);
  }

  length(i: number): number {
    return this.u32(i * SPAN_ENTRY_BYTES + 4);
  }

  private u32(at: number): number {
    const b = this.bytes;
    return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
  }
}

/** Encodes [offset, length] pairs as a span table (tests, conformance, tools). */
export function encodeSpanTable(spans: ReadonlyArray<readonly [number, number]>): Uint8Array {
  const out = new Uint8Array(spans.length * SPAN_ENTRY_BYTES);
  const view = new DataView(out.buffer);
  spans.forEach(([offset, length], i) => {
    view.setUint32(i * SPAN_ENTRY_BYTES, offset);
    view.setUint32(i * SPAN_ENTRY_BYTES + 4, length);
  });
  return out;
}

export function isCodec(name: string): name is Codec {
  return (CODECS as readonly string[]).includes(name);
}

/**
 * zlib level 1: the fastest setting, which is what pays on a link (see docs/performance.md for
 * the measured ratio and speed); a receiver decodes every level alike.
 */
const DEFLATE_OPTIONS = { level: 1, strategy: zlibConstants.Z_DEFAULT_STRATEGY } as const;

/** `data` encoded with `codec` (a fresh buffer; 'none' returns `data` itself). */
export function encodeSpanData(codec: Codec, data: Uint8Array): Uint8Array {
  return codec === 'none' ? data : deflateRawSync(data, DEFLATE_OPTIONS);
}

/**
 * Decodes `data` that must hold exactly `expected` bytes once decoded. Returns the bytes
 * (for 'none', `data` itself) or a reason it is bad. A stream that would decode to more than
 * `expected` stops there: a small frame cannot make the receiver allocate without bound.
 */
export function decodeSpanData(codec: Codec, data: Uint8Array, expected: number): Uint8Array | string {
  if (codec === 'none') return data.length === expected ? data : `data holds ${data.length} bytes, the spans ${expected}`;
  let out: Buffer;
  try {
    out = inflateRawSync(data, { maxOutputLength: Math.max(1, expected) });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ERR_BUFFER_TOO_LARGE' ? `deflate data decodes to more than the spans' ${expected} bytes` : `deflate data is corrupt (${(e as Error).message.slice(0, 60)})`;
  }
  return out.length === expected ? out : `deflate data decodes to ${out.length} bytes, the spans ${expected}`;
}
