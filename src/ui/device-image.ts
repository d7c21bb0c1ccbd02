import type { Device } from '../../device/index.js';
import { type DigestData, DIGEST_BYTES, pageDigests, type ReadbackData, type Span, type StatsData } from '../../protocol/index.js';
import type { Bo, Driver } from '../driver/index.js';

/**
 * The device's copy of one BO (the framebuffer), as the dashboard last read
 * it, page by page with the refresh that last changed each page, so every
 * viewer can be sent only what changed since what it has.
 *
 * The bytes come from the device, never from guest memory: the embedded
 * device through its in-process view; an external one over the driver's own
 * connection, `digest` of every page and then `readback` of the pages whose
 * digest changed. Both read what the device had applied when the read
 * happened; on the wire that is everything the driver sent before it, since
 * the device applies a session's commands in order. Before reading, the
 * session's count of bytes written (in-process counters, or the `stats`
 * request) is compared with the last read's: unchanged, the copy is too, and
 * nothing is read (the idle phases of a run cost one small request).
 */
export class DeviceImage {
  readonly pageSize: number;
  readonly pages: number;
  /** Refreshes that found a change; page p last changed in refresh version[p] (0: never). */
  current = 0;
  /** Bytes as last read; replaced, not mutated, by a refresh (a sent frame may still view the old one). */
  bytes: Uint8Array;
  private readonly version: Uint32Array;
  /** Last digests seen, on the wire path. */
  private digests: Uint8Array | null = null;
  /** The last read started, until it ends. */
  private running: Promise<boolean> | null = null;
  /** Session and bytes written it had at the last read: the same again means nothing changed. */
  private mark = '';

  constructor(
    private readonly driver: Driver,
    private readonly bo: Bo,
    /** The embedded device, or null to read over the driver's connection. */
    private readonly device: Device | null,
  ) {
    this.pageSize = driver.machine.pageSize;
    this.pages = bo.pages;
    this.bytes = new Uint8Array(bo.size);
    this.version = new Uint32Array(bo.pages);
  }

  /**
   * Read the device's copy; resolves true when some page changed. Reads run one at a
   * time, and a call made while one runs reads again after it: what it resolves with
   * was read after the call. Rejects when the device cannot be read (no session, a
   * refused request); the image is then left as it was.
   */
  refresh(): Promise<boolean> {
    const read = () => (this.device !== null ? this.readInProcess(this.device) : this.readOverWire());
    const next = (this.running ?? Promise.resolve(false)).then(read, read);
    this.running = next;
    const done = () => {
      if (this.running === next) this.running = null;
    };
    void next.then(done, done);
    return next;
  }

  /** Pages changed after refresh `since`, in ascending order. */
  changedSince(since: number): number[] {
    const out: number[] = [];
    for (let p = 0; p < this.pages; p++) if (this.version[p]! > since) out.push(p);
    return out;
  }

  private async readInProcess(device: Device): Promise<boolean> {
    const session = this.driver.conn.welcome?.session;
    const view = session === undefined ? undefined : device.session(session);
    if (view === undefined) throw new Error('the device holds no copy of the framebuffer now (no session)');
    const mark = `${session}:${view.counters.bytesWritten}`;
    if (mark === this.mark) return false;
    const copy = view.bo(this.bo.id);
    if (copy === undefined) return false; // not defined there yet: nothing but the zeros we hold
    this.mark = mark;
    const next = this.current + 1;
    let changed = false;
    const ps = this.pageSize;
    const theirs = Buffer.from(copy.buffer, copy.byteOffset, copy.length);
    for (let p = 0; p < this.pages; p++) {
      const end = Math.min((p + 1) * ps, copy.length);
      if (theirs.compare(this.bytes, p * ps, end, p * ps, end) !== 0) {
        this.version[p] = next;
        changed = true;
      }
    }
    if (changed) {
      this.bytes = copy; // a fresh copy from the device: ours from now on
      this.current = next;
    }
    return changed;
  }

  private async readOverWire(): Promise<boolean> {
    const conn = this.driver.conn;
    const welcome = conn.welcome;
    if (welcome === null || !conn.isOpen) throw new Error('no device session to read the framebuffer from');
    let mark = '';
    if (welcome.features.includes('stats')) {
      const stats = await conn.request<StatsData>({ op: 'stats' });
      mark = `${welcome.session}:${stats.bytesWritten}`;
      if (mark === this.mark) return false;
    }
    const ps = this.pageSize;
    this.digests ??= pageDigests(this.bytes, ps);
    const fresh = new Uint8Array(this.digests.length);
    const perDigest = Math.max(1, welcome.maxRanges);
    for (let first = 0; first < this.pages; first += perDigest) {
      const offset = first * ps;
      const length = Math.min(perDigest * ps, this.bo.size - offset);
      const reply = await conn.request<DigestData>({ op: 'digest', bo: this.bo.id, offset, length });
      fresh.set(reply.hashes.subarray(0, fresh.length - first * DIGEST_BYTES), first * DIGEST_BYTES);
    }
    const stale: number[] = [];
    for (let p = 0; p < this.pages; p++) {
      const d = p * DIGEST_BYTES;
      if (!Buffer.from(fresh.buffer, d, DIGEST_BYTES).equals(this.digests.subarray(d, d + DIGEST_BYTES))) stale.push(p);
    }
    if (stale.length === 0) {
      this.mark = mark;
      return false;
    }
    const bytes = this.bytes.slice();
    for (const batch of readbackBatches(stale, ps, this.bo.size, welcome.maxRanges, welcome.maxMessageSize)) {
      const reply = await conn.request<ReadbackData>({ op: 'readback', bo: this.bo.id, ranges: batch });
      for (const [offset, data] of reply.ranges) bytes.set(data, offset);
    }
    // The digests are kept as those of the bytes held: a page that changed between the digest
    // and the readback (even back to what it was) is then found stale by the next refresh.
    const next = this.current + 1;
    for (const p of stale) {
      this.version[p] = next;
      fresh.set(pageDigests(bytes.subarray(p * ps, Math.min((p + 1) * ps, bytes.length)), ps), p * DIGEST_BYTES);
    }
    this.digests = fresh;
    this.bytes = bytes;
    this.current = next;
    this.mark = mark;
    return true;
  }
}

/** Bytes of a readbackData reply besides its data, overall and per span (docs/protocol.md §6.7). */
const REPLY_OVERHEAD = 64;
const SPAN_OVERHEAD = 16;

/**
 * Spans covering the given pages (ascending), consecutive pages merged, split
 * into requests whose replies stay within the device's limits: at most
 * maxRanges spans, data plus framing at most maxMessageSize.
 */
export function readbackBatches(pages: readonly number[], pageSize: number, size: number, maxRanges: number, maxMessageSize: number): Span[][] {
  const budget = maxMessageSize - REPLY_OVERHEAD;
  if (budget <= SPAN_OVERHEAD || maxRanges < 1) throw new RangeError(`no readback fits the device's limits (maxMessageSize ${maxMessageSize}, maxRanges ${maxRanges})`);
  const batches: Span[][] = [];
  let batch: Span[] = [];
  let bytes = 0;
  const push = (offset: number, length: number) => {
    while (length > 0) {
      if (batch.length === maxRanges || budget - bytes - SPAN_OVERHEAD <= 0) {
        batches.push(batch);
        batch = [];
        bytes = 0;
      }
      const n = Math.min(length, budget - bytes - SPAN_OVERHEAD);
      batch.push([offset, n]);
      bytes += n + SPAN_OVERHEAD;
      offset += n;
      length -= n;
    }
  };
  for (let i = 0; i < pages.length; ) {
    let j = i + 1;
    while (j < pages.length && pages[j] === pages[j - 1]! + 1) j++;
    const offset = pages[i]! * pageSize;
    push(offset, Math.min(pages[j - 1]! * pageSize + pageSize, size) - offset);
    i = j;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}
