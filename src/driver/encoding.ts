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
/**
 * Frames smaller than this do not measure the link: the fence's round trip dominates them, and
 * compressed frames are small, so counting them would make a fast link look slow.
 */
const MEASURE_MIN_BYTES = 128 * 1024;
/**
 * Compress only when the wire time saved is this many times the CPU time spent. On a local link
 * the link's own work runs on the same cores as the compressor: the kernel's copies, the
 * device's decode and its copy out of the decoded bytes, so the compressor must pay for those
 * too. Measured: with 2, a fully dirty BO of mostly zero bytes (DEFLATE's best case, above
 * 1 GB/s) was compressed with the device in the same process and written back at half the
 * speed; with 4 it goes raw, while a 50 MB/s device link still gets text-like data compressed.
 */
const MIN_GAIN = 4;
/** While compressing, a large batch goes raw this often, so the link is measured again. */
const REMEASURE_EVERY_MS = 4000;
/** Weight of the newest sample in the running estimates. */
const NEW_WEIGHT = 0.25;

/**
 * Picks the encoding of each batch and, in 'auto', whether to compress it, from two running
 * estimates: the link's throughput (wire, device and its DMA engine together: the bytes of
 * large frames over the time one was in flight) and DEFLATE's speed (in CPU time) and ratio
 * on this data (a 64 KiB sample at most every 250 ms). A batch is compressed when the wire
 * time that saves is more than MIN_GAIN times the CPU time it costs:
 * `speed × (1 − ratio) > MIN_GAIN × throughput`. Until the link is measured,
 * batches go raw. Compressed frames are small and do not measure the link,
 * so while compressing, one large batch every 4 s goes raw (on a 50 MB/s
 * link a raw 1 MiB batch costs 20 ms of it).
 */
export class EncodingChooser {
  /** Bytes per ms; 0 until measured. */
  linkRate = 0;
  /** Raw bytes compressed per ms, and compressed ÷ raw; 0 until measured. */
  compressRate = 0;
  compressRatio = 0;
  private lastSampleAt = -Infinity;
  private lastRawLargeAt = -Infinity;
  // Link meter: the time during which a large frame was in flight, and the bytes of those frames.
  private largeInFlight = 0;
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
    if (!offers('deflate') || data.length === 0 || (this.mode !== 'deflate' && this.mode !== 'auto')) return 'none';
    const now = performance.now();
    if (this.mode === 'deflate' || this.linkRate > 0) this.sample(data, now);
    if (this.mode === 'deflate') return 'deflate';
    if (this.linkRate === 0) return 'none';
    // A byte compressed saves (1 − ratio) of a byte's wire time and costs 1/speed of CPU.
    if (this.compressRate * (1 - this.compressRatio) <= MIN_GAIN * this.linkRate) return 'none';
    // Compressed frames do not measure the link: now and then a large batch goes raw for that.
    if (data.length >= MEASURE_MIN_BYTES && now - this.lastRawLargeAt >= REMEASURE_EVERY_MS) return 'none';
    return 'deflate';
  }

  /** Compresses a sample of `data` to measure speed and ratio, unless one was measured lately. */
  private sample(data: Uint8Array, now: number): void {
    if (now - this.lastSampleAt < SAMPLE_EVERY_MS) return;
    const sample = data.subarray(0, Math.min(SAMPLE_BYTES, data.length));
    const t0 = cpuMs();
    const packed = encodeSpanData('deflate', sample);
    this.noteCompression(sample.length, packed.length, cpuMs() - t0);
  }

  /** A measured compression of `raw` bytes into `packed` that took `ms` of CPU time (cpuMs). */
  noteCompression(raw: number, packed: number, ms: number): void {
    this.lastSampleAt = performance.now();
    const rate = raw / Math.max(ms, 0.001);
    const ratio = packed / raw;
    this.compressRate = this.compressRate === 0 ? rate : blend(this.compressRate, rate);
    this.compressRatio = this.compressRatio === 0 ? ratio : blend(this.compressRatio, ratio);
  }

  /** A frame of `bytes` wire bytes went out. */
  frameSent(bytes: number): void {
    if (bytes < MEASURE_MIN_BYTES) return;
    this.lastRawLargeAt = performance.now();
    this.accrue();
    this.largeInFlight++;
  }

  /** The frame of `bytes` wire bytes was signalled (or failed). */
  frameSettled(bytes: number): void {
    if (bytes < MEASURE_MIN_BYTES || this.largeInFlight === 0) return;
    this.accrue();
    this.largeInFlight--;
    this.busyBytes += bytes;
    if (this.busyMs <= 0) return;
    this.linkRate = this.busyBytes / this.busyMs;
    // Older frames count less, so the estimate follows a link whose speed changes.
    this.busyBytes *= 1 - NEW_WEIGHT;
    this.busyMs *= 1 - NEW_WEIGHT;
  }

  /** Time passes: while a large frame is in flight, it is the link's. */
  private accrue(): void {
    const now = performance.now();
    if (this.largeInFlight > 0) this.busyMs += now - this.markAt;
    this.markAt = now;
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
