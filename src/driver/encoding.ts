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
/** Frames smaller than this do not measure the link (see frameSettled). */
const MEASURE_MIN_BYTES = 128 * 1024;
/** Compress only when that makes the stream at least this much faster (CPU is not free). */
const MIN_GAIN = 1.25;
/** Weight of the newest sample in the running estimates. */
const NEW_WEIGHT = 0.25;

/**
 * Picks the encoding of each batch and, in 'auto', whether to compress it, from two running
 * estimates: the link's throughput (wire, device and its DMA engine together, measured on
 * large uncompressed frames) and DEFLATE's speed and ratio on this data (a 64 KiB sample at
 * most every 250 ms, and every batch compressed). Batches pipeline, so the stream moves at
 * its slowest stage: compressed, min(speed, throughput ÷ ratio); raw, the throughput. A batch
 * is compressed when that is at least MIN_GAIN times faster. Until the link is measured,
 * batches go raw. The throughput is measured again
 * only when a large frame goes uncompressed, so a link that gets faster while batches are
 * compressed is noticed only when the data stops compressing well.
 */
export class EncodingChooser {
  /** Bytes per ms; 0 until measured. */
  linkRate = 0;
  /** Raw bytes compressed per ms, and compressed ÷ raw; 0 until measured. */
  compressRate = 0;
  compressRatio = 0;
  private lastSampleAt = -Infinity;

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
    if (this.mode !== 'auto' || this.linkRate === 0) return 'none';
    const now = performance.now();
    if (now - this.lastSampleAt >= SAMPLE_EVERY_MS) {
      const sample = data.subarray(0, Math.min(SAMPLE_BYTES, data.length));
      const t0 = cpuMs();
      const packed = encodeSpanData('deflate', sample);
      this.noteCompression(sample.length, packed.length, cpuMs() - t0);
    }
    // Frames pipeline (the window): one is compressed while others cross the link, so the
    // stream moves at the slower of the two stages. Compressed: min(CPU, link ÷ ratio) raw
    // bytes per ms; raw: the link (copying is far faster than any link here).
    const compressed = Math.min(this.compressRate, this.linkRate / Math.max(this.compressRatio, 1e-6));
    return compressed > MIN_GAIN * this.linkRate ? 'deflate' : 'none';
  }

  /** A measured compression of `raw` bytes into `packed` that took `ms` of CPU time (cpuMs). */
  noteCompression(raw: number, packed: number, ms: number): void {
    this.lastSampleAt = performance.now();
    const rate = raw / Math.max(ms, 0.001);
    const ratio = packed / raw;
    this.compressRate = this.compressRate === 0 ? rate : blend(this.compressRate, rate);
    this.compressRatio = this.compressRatio === 0 ? ratio : blend(this.compressRatio, ratio);
  }

  /** A frame went on the wire; returns the time to give frameSettled. */
  frameSent(): number {
    return performance.now();
  }

  /**
   * The frame of `bytes` wire bytes sent at `sentAt` was signalled (or failed). Its rate is its
   * bytes over its whole time in flight: wire, device, fence latency and waiting behind the
   * frames before it, so the estimate errs low (towards compressing) on a pipelined link.
   * (Intervals between signals would not do: a device that holds signals back releases them
   * together.) Only frames of at least MEASURE_MIN_BYTES count: the round trip dominates a
   * small one, and compressed frames are small, so counting them would keep a fast link
   * looking slow.
   */
  frameSettled(bytes: number, sentAt: number): void {
    if (bytes < MEASURE_MIN_BYTES) return;
    const rate = bytes / Math.max(performance.now() - sentAt, 0.001);
    this.linkRate = this.linkRate === 0 ? rate : blend(this.linkRate, rate);
  }
}

/**
 * This process's CPU time in ms: what compressing costs, whatever else the machine runs (wall
 * time on a loaded machine would count the time other processes had the core).
 */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function blend(old: number, sample: number): number {
  return old * (1 - NEW_WEIGHT) + sample * NEW_WEIGHT;
}
