import { Bitmap, requireInteger } from '../core/index.js';
import type { Signaled } from '../../protocol/index.js';
import type { Bo } from './bo.js';
import type { DeviceConnection } from './connection.js';
import { transferToResource } from './dirty-tracker.js';
import { DmaFrameWriter, SpanFrameWriter } from './dma-encoder.js';
import { EncodingChooser, ENCODINGS, type Encoding } from './encoding.js';
import { SentCopies } from './sent-copies.js';
import { CancelledError, DeviceError, DeviceLostError, IncompleteFlushError } from './errors.js';
import type { Resource, Upload } from './resource.js';
import type { SurfaceResource } from './surface.js';

export interface WritebackOptions {
  /** Largest DMA message (default 1 MiB, at least 64 KiB, at most the device's maxMessageSize). */
  maxBatchBytes?: number;
  /** Batches sent but not yet signalled by the device (default 4): the window. */
  windowBatches?: number;
  /**
   * Run at the start of every round, awaited when it returns a promise (the driver lands
   * pending readbacks here; with none pending it returns nothing, and the round goes on at once).
   */
  beforeRound?: () => Promise<void> | void;
  /** How DMA frames are encoded (default 'auto'; see Encoding in encoding.ts). */
  encoding?: Encoding;
  /**
   * Bytes of last-sent copies kept for sub-page deltas (default 64 MiB). BOs beyond the
   * budget are sent whole; 0 turns deltas off.
   */
  deltaBudgetBytes?: number;
}

export interface FlushResult {
  /** Fence id that covered this flush. */
  fence: number;
  /** BO pages whose dirty bits this round moved into resources. */
  pagesTransferred: number;
  /** Distinct BO pages whose bytes this round sent (under any strategy, also without a tracker). */
  pagesSent: number;
  /** Pixel/byte payload sent (excluding message framing). */
  payloadBytes: number;
  batches: number;
  /** From flush() to the device signalling the fence. */
  latencyMs: number;
}

export interface WritebackStats {
  flushCalls: number;
  rounds: number;
  batches: number;
  payloadBytes: number;
  pagesTransferred: number;
  pagesSent: number;
  methodSwitches: number;
  /** Wall time spent scanning trackers and moving bits into resources (the snapshot step). */
  scanMs: number;
  /** Most batches ever in flight at once (≤ windowBatches). */
  peakInFlight: number;
  /** Staging buffers allocated (≤ windowBatches). */
  stagingBuffers: number;
  /** Bytes of DMA frames sent (what the wire carried for writeback, framing included). */
  frameBytes: number;
  /** writeSpans batches, and those of them sent compressed. */
  spanBatches: number;
  compressedBatches: number;
  /** Wall time spent filling and finishing frames (reading guest memory, deltas, compression). */
  encodeMs: number;
}

/**
 * Asynchronous DMA writeback. A flush round:
 *  1. snapshot-then-clear: every tracked BO is scanned (clean-record or wp;
 *     both return after their TLB flush, so no CPU can still write through a
 *     stale entry into what is read next) and its bits move into resources;
 *  2. read: the resources' dirty ranges/boxes are copied from guest memory
 *     into staging buffers, one message of at most maxBatchBytes each, never
 *     handing a live page to a pending send;
 *  3. each batch carries a fence; at most windowBatches are unsignalled
 *     at a time, and a staging buffer is reused only after ws has taken it;
 *  4. the last batch's fence resolves the flush (a round with nothing to send
 *     sends a bare fence, which still orders it after everything before).
 * flush() calls made while a round is still submitting join one next round,
 * so a slow device makes writeback coalesce (a page dirtied in ten frames is
 * sent once) instead of queueing without bound. Messages go out in order on
 * one connection, so the device applies them in order.
 */
export class WritebackEngine {
  readonly stats: WritebackStats = {
    flushCalls: 0, rounds: 0, batches: 0, payloadBytes: 0, pagesTransferred: 0, pagesSent: 0, methodSwitches: 0, scanMs: 0, peakInFlight: 0, stagingBuffers: 0,
    frameBytes: 0, spanBatches: 0, compressedBatches: 0, encodeMs: 0,
  };
  readonly chooser: EncodingChooser;
  /** What was last sent of each BO, for deltas (see SentCopies for when it is forgotten). */
  private readonly sent: SentCopies;
  /** The session the last-sent copies belong to (a new session starts empty). */
  private sentSession = -1;
  readonly maxBatchBytes: number;
  readonly windowBatches: number;
  private inFlight = 0;
  private readonly pool: Uint8Array[] = [];
  private readonly wakers: Array<() => void> = [];
  /** Frames are filled one at a time (encode() is synchronous): one writer of each kind. */
  private readonly dmaWriter = new DmaFrameWriter(new Uint8Array(0));
  private readonly spanWriter = new SpanFrameWriter(new Uint8Array(0));
  /** A round is scanning and sending (until its last frame is handed to ws, or it fails). */
  private submitting = false;
  /** Starts the round that flush() calls made while submitting have joined (null: none). */
  private startQueued: (() => void) | null = null;
  private queued: Promise<FlushResult> | null = null;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  /** The latest round begun, while it is unsettled; null once settled. */
  private lastRound: RoundOutcome | null = null;

  private readonly beforeRound: () => Promise<void> | void;

  constructor(private readonly conn: DeviceConnection, private readonly bos: () => Iterable<Bo>, opts: WritebackOptions = {}) {
    this.beforeRound = opts.beforeRound ?? (() => undefined);
    this.maxBatchBytes = opts.maxBatchBytes ?? 1 << 20;
    this.windowBatches = opts.windowBatches ?? 4;
    requireInteger('maxBatchBytes', this.maxBatchBytes, 64 * 1024, 1 << 30);
    requireInteger('windowBatches', this.windowBatches, 1, 1024);
    const encoding = opts.encoding ?? 'auto';
    if (!ENCODINGS.includes(encoding)) throw new RangeError(`encoding must be one of ${ENCODINGS.join(', ')}, got '${String(encoding)}'`);
    this.chooser = new EncodingChooser(encoding);
    const budget = opts.deltaBudgetBytes ?? 64 << 20;
    requireInteger('deltaBudgetBytes', budget, 0);
    this.sent = new SentCopies(budget);
    conn.observeDeviceWrites((m) => {
      for (const [offset, data] of m.ranges) this.sent.forgetRange(m.bo, offset, data.length);
    });
  }

  /** Write back everything dirty now; resolves when the device has applied it. */
  flush(): Promise<FlushResult> {
    this.stats.flushCalls++;
    if (this.closed) return Promise.reject(new CancelledError('writeback engine closed'));
    const t0 = performance.now();
    if (!this.submitting) return this.begin(t0);
    this.queued ??= new Promise<void>((start) => (this.startQueued = start)).then(() => {
      this.queued = null;
      return this.begin(t0);
    });
    return this.queued;
  }

  /** Flush every `ms` milliseconds; results and errors go to the callbacks. */
  startPeriodic(ms: number, onResult?: (r: FlushResult) => void, onError?: (e: Error) => void): void {
    requireInteger('period', ms, 1);
    this.stopPeriodic();
    this.timer = setInterval(() => this.flush().then(onResult, (e: Error) => onError?.(e)), ms);
  }

  stopPeriodic(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Stop: later flush() calls reject; rounds waiting for the window are cancelled. */
  close(): void {
    this.closed = true;
    this.stopPeriodic();
    for (const w of this.wakers.splice(0)) w();
  }

  private begin(t0: number): Promise<FlushResult> {
    this.submitting = true;
    // A round takes only what is dirty when it scans; what an earlier round still in flight
    // carried is dirty again only once that round has failed. So a round that began while an
    // earlier one was unsettled succeeds only if that one did: otherwise bytes written before
    // this flush() may be missing. (An earlier round settled by now re-dirtied before our scan.)
    const earlier = this.lastRound;
    const outcome = new RoundOutcome();
    this.lastRound = outcome;
    const done = this.round(t0, earlier);
    const settle = (failure: Error | null): void => {
      if (this.lastRound === outcome) this.lastRound = null;
      outcome.settle(failure);
    };
    done.then(() => settle(null), settle);
    return done;
  }

  /**
   * The round being submitted has handed its last frame to ws, or failed: the round that
   * flush() calls joined meanwhile begins. Until it has, later calls join it too.
   */
  private submitted(): void {
    const start = this.startQueued;
    this.startQueued = null;
    if (start === null) this.submitting = false;
    else start();
  }

  private async round(t0: number, earlier: RoundOutcome | null): Promise<FlushResult> {
    const fences: Array<Promise<Signaled>> = [];
    const carried = new Set<Resource>();
    const sentPages = new Map<Bo, Bitmap>();
    const frames: FrameOutcomes = { own: new Set(), refused: [] };
    /** Why something dirty could not be sent this round (it stays dirty). */
    let leftBehind: Error | null = null;
    let pagesTransferred = 0;
    let payloadBytes = 0;
    let batches = 0;
    try {
      if (!this.conn.isOpen) throw new DeviceLostError('no device session');
      const before = this.beforeRound();
      if (before !== undefined) await before;
      this.stats.rounds++;
      const scan0 = performance.now();
      for (const bo of this.bos()) {
        const t = bo.tracker;
        if (t === null) continue;
        const scan = t.scan();
        if (scan.switchedTo !== null) this.stats.methodSwitches++;
        for (const res of bo.resources) pagesTransferred += transferToResource(t, res);
      }
      this.stats.scanMs += performance.now() - scan0;
      // A piece the device changed meanwhile waits for its readback; a few passes land
      // those readbacks and send the rest, so a resolved flush never leaves a page behind.
      for (let pass = 0; ; pass++) {
        if (pass > 0) await this.beforeRound();
        const uploads = this.takeUploads(carried);
        for (const u of uploads.pieces) markPages(sentPages, u);
        leftBehind ??= uploads.refusal;
        const sent = await this.send(uploads.pieces, frames, fences);
        payloadBytes += sent.payloadBytes;
        batches += sent.batches;
        if (sent.deferredPages === 0) break;
        if (pass === MAX_PASSES - 1) {
          leftBehind ??= new IncompleteFlushError(`${sent.deferredPages} pages the device changed are still waiting for their readback; they stay dirty`);
          break;
        }
      }
      if (fences.length === 0) fences.push(this.conn.fence());
    } catch (e) {
      this.submitted();
      this.sent.forgetAll(); // frames of this round may not have been sent or applied
      await Promise.allSettled(fences);
      this.sent.forgetAll();
      if (needsReupload(e)) for (const res of carried) res.markAllDirty();
      throw e;
    }
    this.submitted();
    let results: PromiseSettledResult<Signaled>[];
    if (fences.length === 1) {
      // A small flush has one fence: awaited as it is, without Promise.allSettled's bookkeeping.
      try {
        results = [{ status: 'fulfilled', value: await fences[0]! }];
      } catch (reason) {
        results = [{ status: 'rejected', reason }];
      }
    } else {
      results = await Promise.allSettled(fences);
    }
    const failed = roundFailure(results, frames) ?? refusedMeanwhile(carried) ?? leftBehind;
    if (failed !== null) {
      // The device applied an unknown part of what this round (and rounds after it) sent.
      this.sent.forgetAll();
      if (needsReupload(failed)) for (const res of carried) res.markAllDirty();
      throw failed;
    }
    this.stats.batches += batches;
    this.stats.payloadBytes += payloadBytes;
    this.stats.pagesTransferred += pagesTransferred;
    let pagesSent = 0;
    for (const pages of sentPages.values()) pagesSent += pages.count();
    this.stats.pagesSent += pagesSent;
    if (earlier !== null) {
      const failed = earlier.settled ? earlier.failure : await earlier.wait();
      if (failed !== null && needsReupload(failed)) throw failed;
    }
    const last = results[results.length - 1]!;
    return { fence: last.status === 'fulfilled' ? last.value.fence : -1, pagesTransferred, pagesSent, payloadBytes, batches, latencyMs: performance.now() - t0 };
  }

  /**
   * Take the upload work of every resource the device can take uploads for.
   * A resource whose object the device refused to define keeps its dirty state
   * (the driver defines it again before a later round); its refusal is returned.
   */
  private takeUploads(carried: Set<Resource>): { pieces: Upload[]; refusal: DeviceError | null } {
    const pieces: Upload[] = [];
    let refusal: DeviceError | null = null;
    // A device without surfaces takes a surface's rows as plain writes at their BO offsets;
    // span frames carry them that way too (the same bytes, and deltas apply).
    const asRanges = !this.conn.offers('surfaces') || this.chooser.batch((f) => this.conn.offers(f)).spans;
    for (const bo of this.bos()) {
      for (const res of bo.resources) {
        if (!res.hasDirty()) continue;
        const r = res.deviceRefusal();
        if (r !== null) {
          refusal ??= r;
          continue;
        }
        carried.add(res);
        for (const u of res.takeUploads()) {
          if (u.kind === 'box' && asRanges) pieces.push(...boxRowsAsRanges(u));
          else pieces.push(u);
        }
      }
    }
    return { pieces, refusal };
  }

  /** Send `uploads` as fenced DMA frames within the window; pieces the device changed meanwhile are deferred (dirty again). */
  private async send(uploads: Upload[], frames: FrameOutcomes, fences: Array<Promise<Signaled>>): Promise<{ payloadBytes: number; batches: number; deferredPages: number }> {
    const limit = Math.min(this.maxBatchBytes, this.conn.welcome?.maxMessageSize ?? this.maxBatchBytes);
    const maxEntries = this.conn.welcome?.maxRanges ?? Infinity;
    let payloadBytes = 0;
    let batches = 0;
    let deferredPages = 0;
    while (uploads.length > 0) {
      // No await when a slot is free: a 1-page sync goes out in the same tick as its scan.
      const buf = this.freeSlot(limit) ?? (await this.slot(limit));
      // The device changed pages while we waited: those pieces wait for their readback.
      deferredPages += deferDeviceNewer(uploads);
      if (uploads.length === 0) {
        this.release(buf);
        break;
      }
      const seq = this.conn.nextSeq();
      const command = describe(uploads[0]!);
      frames.own.add(seq);
      // The frame carries its own fence when the device supports it (one frame per batch,
      // one per 1-page sync); otherwise a separate fence frame follows it.
      const fenced = this.conn.offers('fencedWrite');
      const [fence, signaled] = fenced ? this.conn.expectFence() : [undefined, null];
      // Read now, after every announcement processed so far: tell the device so.
      const seen = this.conn.offers('seen') ? this.conn.seenDeviceWrites : undefined;
      const header: FrameHeader = { seq, maxEntries, seen, fence };
      const t0 = performance.now();
      let frame: Uint8Array;
      try {
        const encoded = this.encode(buf, uploads, header);
        payloadBytes += encoded.payload;
        frame = encoded.frame;
      } catch (e) {
        this.release(buf);
        if (fence !== undefined) this.conn.dropFence(fence, e as Error);
        throw e;
      }
      this.stats.encodeMs += performance.now() - t0;
      this.stats.frameBytes += frame.length;
      this.inFlight++;
      this.stats.peakInFlight = Math.max(this.stats.peakInFlight, this.inFlight);
      try {
        // The staging buffer is ours until ws is done with it: it may be masked in place.
        this.conn.sendOwnedFrame(frame, () => this.release(buf));
      } catch (e) {
        this.inFlight--;
        this.release(buf);
        if (fence !== undefined) this.conn.dropFence(fence, e as Error);
        throw e;
      }
      const wireBytes = frame.length;
      this.chooser.frameSent(wireBytes);
      this.conn.watch(seq, { failed: (e) => frames.refused.push(new DeviceError(e.code, e.detail, e.seq, command)) });
      const done = signaled ?? this.conn.fence();
      fences.push(done);
      const settled = (): void => {
        this.chooser.frameSettled(wireBytes);
        this.settled();
      };
      void done.then(settled, settled);
      batches++;
    }
    return { payloadBytes, batches, deferredPages };
  }

  /**
   * Fill one frame from the front of `uploads` in this session's encoding; returns it (a view
   * of `buf`) and the payload bytes it carries (before compression).
   */
  private encode(buf: Uint8Array, uploads: Upload[], header: FrameHeader): { frame: Uint8Array; payload: number } {
    const offers = (f: string): boolean => this.conn.offers(f);
    const enc = this.chooser.batch(offers);
    if (!enc.spans) {
      const writer = this.dmaWriter.into(buf);
      const payload = fillBatch(writer, uploads, header);
      return { frame: writer.finish(), payload };
    }
    if (this.sentSession !== this.conn.sessions) {
      this.sent.forgetAll(); // a new session's device holds nothing we sent before
      this.sentSession = this.conn.sessions;
    }
    const writer = this.spanWriter.into(buf);
    const payload = fillSpans(writer, uploads, header, enc.delta ? this.sent : null);
    const codec = this.chooser.codec(writer.data, offers);
    const { frame, codecUsed } = writer.finish(codec);
    this.stats.spanBatches++;
    if (codecUsed !== 'none') this.stats.compressedBatches++;
    return { frame, payload };
  }

  private readonly settled = (): void => {
    this.inFlight--;
    this.wake();
  };

  /** Wait for a window slot and a free staging buffer of `size` bytes. */
  private async slot(size: number): Promise<Uint8Array> {
    for (;;) {
      const buf = this.freeSlot(size);
      if (buf !== null) return buf;
      await new Promise<void>((r) => this.wakers.push(r));
    }
  }

  /** A window slot and staging buffer if one is free now, else null (slot() waits for one). */
  private freeSlot(size: number): Uint8Array | null {
    if (this.closed) throw new CancelledError('writeback engine closed');
    if (!this.conn.isOpen) throw new DeviceLostError('device session lost during writeback');
    if (this.inFlight >= this.windowBatches) return null;
    const buf = this.pool.pop();
    if (buf !== undefined && buf.length === size) return buf;
    if (buf === undefined && this.stats.stagingBuffers < this.windowBatches) {
      this.stats.stagingBuffers++;
      return new Uint8Array(size);
    }
    return buf !== undefined ? new Uint8Array(size) : null; // limit changed: replace
  }

  private release(buf: Uint8Array): void {
    this.pool.push(buf);
    this.wake();
  }

  private wake(): void {
    if (this.wakers.length > 0) for (const w of this.wakers.splice(0)) w();
  }
}

/** How a round turned out, for the rounds that began while it was unsettled. */
class RoundOutcome {
  settled = false;
  /** Why it failed; null: it succeeded. */
  failure: Error | null = null;
  /** Rounds waiting for this one (made only when one waits: most rounds settle unwatched). */
  private waiters: Array<(failure: Error | null) => void> | null = null;

  settle(failure: Error | null): void {
    this.settled = true;
    this.failure = failure;
    const waiters = this.waiters;
    this.waiters = null;
    if (waiters !== null) for (const w of waiters) w(failure);
  }

  /** Resolves with the failure (null: success) once settled. */
  wait(): Promise<Error | null> {
    return this.settled ? Promise.resolve(this.failure) : new Promise((resolve) => (this.waiters ??= []).push(resolve));
  }
}

/** Passes of one round that may land readbacks and send what they held back. */
const MAX_PASSES = 8;

/** The round's DMA frames by seq, and the device's refusals of them. */
interface FrameOutcomes {
  own: Set<number>;
  refused: DeviceError[];
}

/**
 * Why a round whose fences settled as `results` failed, or null. A refusal of
 * one of its own frames fails it (the device answers each refused command with
 * an error carrying its seq); a failed fence whose first failure was another
 * sender's command (a readback, a define) does not, unless it names no seq.
 * A lost session or a close wins over both.
 */
function roundFailure(results: PromiseSettledResult<Signaled>[], frames: FrameOutcomes): Error | null {
  let fenceFailure: Error | null = null;
  for (const r of results) {
    if (r.status === 'fulfilled') continue;
    const e = r.reason as Error;
    if (!needsReupload(e)) return e;
    const foreign = e instanceof DeviceError && e.seq !== undefined && !frames.own.has(e.seq);
    if (!foreign) fenceFailure ??= e;
  }
  return frames.refused[0] ?? fenceFailure;
}

/**
 * A define the device refused while this round's uploads were on the way (defines go out before
 * uploads, so its error came back before their fences). A surface's rows sent as plain BO
 * writes are applied even so; the round still fails, as its writeSurface would have, so the
 * surface is defined again and its bytes uploaded once more.
 */
function refusedMeanwhile(carried: Set<Resource>): DeviceError | null {
  for (const res of carried) {
    const r = res.deviceRefusal();
    if (r !== null) return r;
  }
  return null;
}

/** Which command of ours an upload piece starts, for error messages. */
function describe(u: Upload): string {
  return u.kind === 'range' ? `write BO ${u.bo.id}` : `writeSurface surface ${u.res.sid}`;
}

/**
 * Whether a round that failed with `e` must upload what it carried again, in
 * full: the device's copy of it is unknown. Not after a lost session (the new
 * one resyncs everything) nor after closing.
 */
function needsReupload(e: unknown): boolean {
  return !(e instanceof DeviceLostError || e instanceof CancelledError);
}

/**
 * Pieces touching a page whose device copy is newer than guest memory would
 * overwrite the device's change with stale bytes: take them out and mark
 * their pages dirty again, so a later round (after the readback) sends them.
 */
function deferDeviceNewer(uploads: Upload[]): number {
  let deferred = 0;
  for (let i = uploads.length - 1; i >= 0; i--) {
    const u = uploads[i]!;
    const [bo, from, to] = pagesOf(u);
    if (bo.destroyed) {
      uploads.splice(i, 1); // the BO is gone on both sides
      continue;
    }
    if (bo.deviceNewer.findNextSet(from, to) >= to) continue;
    uploads.splice(i, 1);
    const ps = bo.space.pageSize;
    u.res.dirtyRangeAdd(from * ps, to * ps);
    deferred += to - from;
  }
  return deferred;
}

/** Mark the BO pages whose bytes piece u sends (each row of a box on its own: rows skip the pitch). */
function markPages(sent: Map<Bo, Bitmap>, u: Upload): void {
  const bo = u.kind === 'range' ? u.bo : u.res.bo;
  let pages = sent.get(bo);
  if (pages === undefined) sent.set(bo, (pages = new Bitmap(bo.pages)));
  if (u.kind === 'range') return pages.setRange(...bo.pageSpan(u.offset, u.length));
  const r = u.res;
  for (let z = u.z; z < u.z + u.d; z++) {
    for (let y = u.y; y < u.y + u.h; y++) {
      pages.setRange(...bo.pageSpan(r.offset + z * r.imagePitch + y * r.rowPitch + u.x * r.bytesPerPixel, u.w * r.bytesPerPixel));
    }
  }
}

/** A box piece as one range piece per row (the bytes a writeSurface of it would carry). */
function boxRowsAsRanges(u: Upload): Upload[] {
  if (u.kind === 'range') return [u];
  const r = u.res as SurfaceResource;
  const out: Upload[] = [];
  for (let z = u.z; z < u.z + u.d; z++) {
    for (let y = u.y; y < u.y + u.h; y++) {
      out.push({ kind: 'range', res: r, bo: r.bo, offset: r.offset + z * r.imagePitch + y * r.rowPitch + u.x * r.bytesPerPixel, length: u.w * r.bytesPerPixel });
    }
  }
  return out;
}

/** BO pages [from, to) an upload piece reads. */
function pagesOf(u: Upload): [Bo, number, number] {
  if (u.kind === 'range') return [u.bo, ...u.bo.pageSpan(u.offset, u.length)];
  const r = u.res;
  const first = r.offset + u.z * r.imagePitch + u.y * r.rowPitch + u.x * r.bytesPerPixel;
  const end = r.offset + (u.z + u.d - 1) * r.imagePitch + (u.y + u.h - 1) * r.rowPitch + (u.x + u.w) * r.bytesPerPixel;
  return [r.bo, ...r.bo.pageSpan(first, end - first)];
}

/**
 * Move as much of `uploads` (from the front) as fits into one frame. A frame
 * targets one BO ('write') or one surface ('writeSurface'); long ranges and
 * big boxes are split. Returns the payload bytes added.
 */
export interface FrameHeader {
  seq: number;
  /** Entries allowed in one frame (the device's maxRanges). */
  maxEntries: number;
  /** Announcements processed before reading (feature seen); undefined: not sent. */
  seen: number | undefined;
  /** Carried fence (feature fencedWrite), if any. */
  fence: number | undefined;
}

/** @internal exported for its property test */
export function fillBatch(w: DmaFrameWriter, uploads: Upload[], { seq, maxEntries, seen, fence }: FrameHeader): number {
  const first = uploads[0]!;
  let payload = 0;
  if (first.kind === 'range') {
    w.beginWrite(seq, first.bo.id, seen, fence);
    while (uploads.length > 0) {
      const u = uploads[0]!;
      if (u.kind !== 'range' || u.bo !== first.bo || w.entries >= maxEntries) break;
      const n = Math.min(u.length, w.room());
      if (n <= 0) break;
      const { bo, offset } = u;
      w.addRange(offset, n, (buf, at) => bo.copyOut(offset, buf, at, n));
      payload += n;
      if (n === u.length) uploads.shift();
      else uploads[0] = { ...u, offset: u.offset + n, length: u.length - n };
    }
    return payload;
  }
  w.beginWriteSurface(seq, first.res.sid, seen, fence);
  while (uploads.length > 0) {
    const u = uploads[0]!;
    if (u.kind !== 'box' || u.res !== first.res || w.entries >= maxEntries) break;
    const { res } = u;
    const bpp = res.bytesPerPixel;
    if (u.d > 1) {
      // Whole slices: one box per slice keeps every entry a 2D box.
      uploads.splice(0, 1, ...Array.from({ length: u.d }, (_, i) => ({ ...u, z: u.z + i, d: 1 })));
      continue;
    }
    const rowBytes = u.w * bpp;
    const room = w.room();
    let rows = Math.min(u.h, Math.floor(room / rowBytes));
    let cols = u.w;
    if (rows <= 0) { // not one whole row fits (room may be negative once a frame is nearly full)
      if (w.entries > 0 || room < bpp) break;
      rows = 1;
      cols = Math.floor(room / bpp); // a single row wider than a frame: split along x
    }
    const len = rows * cols * bpp;
    const { x, y, z } = u;
    w.addBox(x, y, z, cols, rows, 1, len, (buf, at) => {
      for (let r = 0; r < rows; r++) {
        res.bo.copyOut(res.offset + z * res.imagePitch + (y + r) * res.rowPitch + x * bpp, buf, at + r * cols * bpp, cols * bpp);
      }
    });
    payload += len;
    if (cols < u.w) {
      // The rest of this row, then the rows below it.
      const rest: Upload[] = [{ ...u, x: u.x + cols, w: u.w - cols, h: 1 }];
      if (u.h > 1) rest.push({ ...u, y: u.y + 1, h: u.h - 1 });
      uploads.splice(0, 1, ...rest);
    } else if (rows === u.h) uploads.shift();
    else uploads[0] = { ...u, y: u.y + rows, h: u.h - rows };
  }
  return payload;
}

/**
 * Move as much of `uploads` (range pieces of one BO, from the front) as fits into one
 * writeSpans frame. With `copies`, only the bytes that differ from what was last sent of a
 * BO go (sub-page deltas), and what goes is recorded as sent. Returns the payload bytes added.
 */
export function fillSpans(w: SpanFrameWriter, uploads: Upload[], { seq, maxEntries, seen, fence }: FrameHeader, copies: SentCopies | null): number {
  const first = uploads[0]!;
  if (first.kind !== 'range') throw new RangeError('span frames carry range pieces only (boxes go as rows)');
  const bo = first.bo;
  w.beginWriteSpans(seq, bo.id, seen, fence);
  const copy = copies?.of(bo) ?? null;
  const pageSize = bo.space.pageSize;
  const page = (i: number): Uint8Array => bo.page(i);
  let payload = 0;
  /** Room for a span of up to `want` bytes: how many bytes it may have (0: the frame is full). */
  const fits = (want: number): number => (w.entries >= maxEntries ? 0 : Math.max(0, Math.min(want, w.room())));
  /** Whole pieces: BO bytes [start, end) into the frame, as much as fits; returns where it stopped. */
  const emitWhole = (start: number, end: number): number => {
    const n = fits(end - start);
    if (n > 0) w.addSpan(start, n, (buf, to) => bo.copyOut(start, buf, to, n));
    payload += n;
    return start + n;
  };
  /** Deltas: [start, end) lies in one page (SentCopy.diff cuts runs there); recorded as sent. */
  const emitDelta = (start: number, end: number): number => {
    const n = fits(end - start);
    if (n === 0) return start;
    const p = Math.floor(start / pageSize);
    const at = w.addSpanFrom(start, bo.page(p), start - p * pageSize, n);
    copy!.store(start, w.buf, at, n);
    payload += n;
    return start + n;
  };
  while (uploads.length > 0) {
    const u = uploads[0]!;
    if (u.kind !== 'range' || u.bo !== bo || w.entries >= maxEntries) break;
    const end = u.offset + u.length;
    const done = copy !== null ? copy.diff(u.offset, u.length, pageSize, page, emitDelta) : emitWhole(u.offset, end);
    if (done === end) {
      uploads.shift();
      continue;
    }
    uploads[0] = { ...u, offset: done, length: end - done };
    break;
  }
  return payload;
}
