import type { DataRange } from '../../protocol/index.js';

/** What one device-side write may carry: the device's maxRanges, and the bytes its announcement may hold. */
export interface DeviceWriteLimits {
  maxRanges: number;
  /** Bytes of one device write's ranges (payload plus RANGE_OVERHEAD per range). */
  maxBytes: number;
}

/** Encoding cost allowed per range of an announcement (array header, offset, binary header). */
const RANGE_OVERHEAD = 32;

/**
 * The limits of one device write on a device that announced `maxRanges` and
 * `maxMessageSize`: the device announces every write to the driver in one
 * message holding all its bytes, so a write keeps to half a message (the
 * other half is room for the message's own encoding).
 */
export function deviceWriteLimits(welcome: { maxRanges: number; maxMessageSize: number }): DeviceWriteLimits {
  return { maxRanges: welcome.maxRanges, maxBytes: Math.max(RANGE_OVERHEAD + 1, Math.floor(welcome.maxMessageSize / 2)) };
}

/**
 * A run of consecutive device-write records to one BO: one device-side
 * operation of the trace, sent to the device as batches that each keep
 * within its limits (a payload larger than a batch is split). A batch goes
 * out as soon as it is full, so what the run holds in memory is one batch.
 */
export class DeviceWriteRun {
  private ranges: DataRange[] = [];
  private bytes = 0;

  constructor(
    readonly bo: number,
    private readonly limits: DeviceWriteLimits,
    private readonly send: (bo: number, ranges: DataRange[]) => Promise<void>,
  ) {}

  /** Add the bytes the device writes at `offset`. */
  async add(offset: number, data: Uint8Array): Promise<void> {
    const piece = this.limits.maxBytes - RANGE_OVERHEAD;
    for (let at = 0; at < data.length; at += piece) {
      const bytes = data.subarray(at, at + piece);
      if (this.ranges.length >= this.limits.maxRanges || this.bytes + bytes.length + RANGE_OVERHEAD > this.limits.maxBytes) await this.flush();
      this.ranges.push([offset + at, bytes]);
      this.bytes += bytes.length + RANGE_OVERHEAD;
    }
  }

  /** Send what is left. */
  async end(): Promise<void> {
    await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.ranges.length === 0) return;
    const ranges = this.ranges;
    this.ranges = [];
    this.bytes = 0;
    await this.send(this.bo, ranges);
  }
}
