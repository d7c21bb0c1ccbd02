import { encodeSpanData, type Codec } from '../../protocol/index.js';

/**
 * How the writeback engine encodes its DMA frames (docs/protocol.md §6.15 has the wire side):
 * - 'raw': `write` / `writeSurface` frames of whole dirty pieces (every device takes them);
 * - 'spans': `writeSpans` frames (feature writeSpans) of whole pieces: one compact span table;
 * - 'delta': `writeSpans` of only the bytes that changed since they were last sent (sub-page
 *   deltas against the driver's last-sent copies, within `deltaBudgetBytes`);
 * - 'deflate': deltas, compressed with DEFLATE (feature deflate) whenever that is smaller;
 * - 'auto' (default): deltas, and per batch compressed or not by what the link and the CPU
 *   measure — compressed when the wire time it saves exceeds the time it takes.
 * A mode whose feature the device lacks falls back to the next plainer one ('deflate' →
 * 'delta' without deflate, everything → 'raw' without writeSpans).
 */
export const ENCODINGS = ['raw', 'spans', 'delta', 'deflate', 'auto'] as const;
export type Encoding = (typeof ENCODINGS)[number];

/** What one batch uses. */
export interface BatchEncoding {
  /** writeSpans frames (else write / writeSurface). */
  spans: boolean;
  /** Only changed bytes of pieces with a last-sent copy. */
  delta: boolean;
}

/** Data sampled to measure compression when no recent measurement exists. */
const SAMPLE_BYTES = 64 * 1024;
/** Measure compression again after this long without one (the data changes). */
const SAMPLE_EVERY_MS = 250;
/** Weight of the newest sample in the running estimates. */
const NEW_WEIGHT = 0.25;

/**
 * Picks the encoding of each batch and, in 'auto', whether to compress it, from two running
 * estimates: the link's throughput (bytes signalled per ms while a frame was in flight:
 * wire, device and fence latency together) and DEFLATE's speed and ratio on this data.
 * Compressing pays when ratio-saved bytes cross the link slower than the CPU compresses all
 * of them: speed × (1 − ratio) > throughput. Until the link is measured, batches go raw.
 */
export class EncodingChooser {
  /** Bytes per ms; 0 until measured. */
  linkRate = 0;
  /** Raw bytes compressed per ms, and compressed ÷ raw; 0 until measured. */
  compressRate = 0;
  compressRatio = 0;
  private lastSampleAt = -Infinity;
  // Link meter: time with at least one frame in flight, and the bytes signalled meanwhile.
  private inFlight = 0;
  private markAt = 0;
  private busyMs = 0;
  private busyBytes = 0;

  constructor(readonly mode: Encoding) {}

  /** The batch encoding for a device offering these features. */
  batch(offers: (feature: string) => boolean): BatchEncoding {
    if (this.mode === 'raw' || !offers('writeSpans')) return { spans: false, delta: false };
    return { spans: true, delta: this.mode !== 'spans' };
  }

  /** The codec for `data` of a writeSpans batch; may compress a sample of it to measure. */
  codec(data: Uint8Array, offers: (feature: string) => boolean): Codec {
    if (!offers('deflate') || data.length === 0) return 'none';
    if (this.mode === 'deflate') return 'deflate';
    if (this.mode !== 'auto') return 'none';
    const now = performance.now();
    if (now - this.lastSampleAt >= SAMPLE_EVERY_MS) {
      const sample = data.subarray(0, Math.min(SAMPLE_BYTES, data.length));
      const t0 = performance.now();
      const packed = encodeSpanData('deflate', sample);
      this.noteCompression(sample.length, packed.length, performance.now() - t0);
    }
    return this.linkRate > 0 && this.compressRate * (1 - this.compressRatio) > this.linkRate ? 'deflate' : 'none';
  }

  /** A measured compression of `raw` bytes into `packed` that took `ms`. */
  noteCompression(raw: number, packed: number, ms: number): void {
    this.lastSampleAt = performance.now();
    const rate = raw / Math.max(ms, 0.001);
    const ratio = packed / raw;
    this.compressRate = this.compressRate === 0 ? rate : blend(this.compressRate, rate);
    this.compressRatio = this.compressRatio === 0 ? ratio : blend(this.compressRatio, ratio);
  }

  /** A frame of `bytes` went on the wire. */
  frameSent(): void {
    this.accrue();
    this.inFlight++;
  }

  /** A frame of `bytes` wire bytes was signalled (or failed). */
  frameSettled(bytes: number): void {
    this.accrue();
    this.inFlight = Math.max(0, this.inFlight - 1);
    this.busyBytes += bytes;
    if (this.busyMs > 0) {
      const rate = this.busyBytes / this.busyMs;
      this.linkRate = this.linkRate === 0 ? rate : blend(this.linkRate, rate);
    }
    // Old bytes count less: the estimate follows a link whose speed changes.
    this.busyBytes *= 1 - NEW_WEIGHT;
    this.busyMs *= 1 - NEW_WEIGHT;
  }

  private accrue(): void {
    const now = performance.now();
    if (this.inFlight > 0) this.busyMs += now - this.markAt;
    this.markAt = now;
  }
}

function blend(old: number, sample: number): number {
  return old * (1 - NEW_WEIGHT) + sample * NEW_WEIGHT;
}
