import type { Bo } from '../driver/bo.js';
import { type BoSpec, coveredRanges } from './world.js';

/** The invariants the soak checks, by stable id (docs/reliability.md §3). */
export const INVARIANTS = {
  /** (a) A resolved flush: every page the CPUs dirtied before flush() was called and nobody wrote since is on the device. */
  flush: 'flush-holds-writes',
  /** (b) After the faults stop, a bounded number of flushes makes the device copy coherent, with no user action. */
  converge: 'converges',
  /** (c) No flush, fence, connect or close waits longer than the bound. */
  hang: 'bounded-waits',
  /** (c) No promise rejects without a handler, no exception escapes to the event loop. */
  unhandled: 'no-unhandled-errors',
  /** (d) Guest memory keeps every CPU write and receives every device write it was told about (read coherence). */
  guest: 'guest-keeps-writes',
} as const;
export type Invariant = (typeof INVARIANTS)[keyof typeof INVARIANTS];

/** What differed, for a failure report. */
export interface Difference {
  /** Driver BO id, and the program's handle of the BO (what steps call it). */
  bo: number;
  handle: number;
  /** BO pages with a differing byte (at most the first 16). */
  pages: number[];
  /** How many pages differ in all. */
  pageCount: number;
  /** The first differing byte: its BO offset, the value expected and the value found. */
  offset: number;
  expected: number;
  found: number | null;
  /** Where the wrong value was: the device's copy, or guest memory. */
  where: 'device' | 'guest';
  note?: string;
}

/** A device write the driver may not have read back yet. */
interface PendingDeviceWrite {
  session: number;
  offset: number;
  length: number;
}

/**
 * What one BO must hold, independently of the driver: the last value written
 * to every byte by anyone (CPU or device), when each page was last written,
 * and which bytes a resource covers. Device-written bytes stay "uncertain"
 * until the driver has read them back (they are then the guest's) or their
 * session died before it could (guest memory is then authoritative and keeps
 * what it had: docs/architecture.md, read coherence).
 */
export class BoShadow {
  readonly pages: number;
  readonly expected: Uint8Array;
  /** 1 for bytes written by the device whose readback is not confirmed. */
  readonly uncertain: Uint8Array;
  /** Oracle clock of the last write (CPU or device) to each page; 0 = never. */
  readonly lastWrite: Int32Array;
  /** Oracle clock of the last CPU write to each page; 0 = never. */
  readonly lastCpuWrite: Int32Array;
  /** 1 for bytes inside a resource and inside the BO (only those are uploaded). */
  readonly covered: Uint8Array;
  pending: PendingDeviceWrite[] = [];
  destroyed = false;

  constructor(readonly bo: Bo, readonly handle: number, readonly spec: BoSpec, readonly pageSize: number, readonly createdAt: number) {
    this.pages = Math.ceil(spec.size / pageSize);
    this.expected = new Uint8Array(this.pages * pageSize);
    this.uncertain = new Uint8Array(this.pages * pageSize);
    this.lastWrite = new Int32Array(this.pages);
    this.lastCpuWrite = new Int32Array(this.pages);
    this.covered = new Uint8Array(this.pages * pageSize);
    for (const [s, e] of coveredRanges(spec)) this.covered.fill(1, s, Math.min(e, spec.size));
  }

  get size(): number {
    return this.spec.size;
  }
}

/**
 * The oracle of one run: it is told every write as it lands (CPU writes in
 * guest memory, device writes on the device) and checks the invariants
 * against guest memory and the device's own copy (read inside the device,
 * never over the wire).
 */
export class Oracle {
  /** Advances with every write; flushes remember the clock when they were called. */
  clock = 0;
  readonly shadows: BoShadow[] = [];

  addBo(bo: Bo, handle: number, spec: BoSpec, pageSize: number): BoShadow {
    const s = new BoShadow(bo, handle, spec, pageSize, ++this.clock);
    this.shadows.push(s);
    return s;
  }

  destroyBo(s: BoShadow): void {
    s.destroyed = true;
    this.shadows.splice(this.shadows.indexOf(s), 1);
  }

  /** A CPU wrote `data` at BO byte `offset` (it is in guest memory now). */
  cpuWrite(s: BoShadow, offset: number, data: Uint8Array): void {
    const t = ++this.clock;
    s.expected.set(data, offset);
    s.uncertain.fill(0, offset, offset + data.length);
    for (let p = Math.floor(offset / s.pageSize); p * s.pageSize < offset + data.length; p++) {
      s.lastWrite[p] = t;
      s.lastCpuWrite[p] = t;
    }
  }

  /** The device wrote `data` at BO byte `offset` in device session `session`. */
  deviceWrite(s: BoShadow, offset: number, data: Uint8Array, session: number): void {
    const t = ++this.clock;
    s.expected.set(data, offset);
    s.uncertain.fill(1, offset, offset + data.length);
    for (let p = Math.floor(offset / s.pageSize); p * s.pageSize < offset + data.length; p++) s.lastWrite[p] = t;
    s.pending.push({ session, offset, length: data.length });
  }

  /**
   * Decide the device writes whose fate is known: read back (the driver has no
   * device-newer page in them any more, in the session they were made in) or
   * lost with their session (guest memory keeps its bytes). Call when nothing
   * is in flight.
   */
  settleDeviceWrites(session: number | null, guestByte: (s: BoShadow, offset: number) => number): void {
    for (const s of this.shadows) {
      s.pending = s.pending.filter((w) => {
        if (session === w.session) {
          const ps = s.pageSize;
          const from = Math.floor(w.offset / ps);
          const to = Math.ceil((w.offset + w.length) / ps);
          if (s.bo.deviceNewer.findNextSet(from, to) < to) return true; // not read back yet
          s.uncertain.fill(0, w.offset, w.offset + w.length);
          return false;
        }
        if (session === null) return true; // no session now: decide later
        for (let b = w.offset; b < w.offset + w.length; b++) {
          if (s.uncertain[b] === 1) {
            s.expected[b] = guestByte(s, b);
            s.uncertain[b] = 0;
          }
        }
        return false;
      });
    }
  }

  /**
   * Invariant (a) at the moment a flush called at clock `t0` resolved: every
   * page a CPU wrote before t0 and nobody wrote since holds, on the device,
   * every covered byte as expected (bytes of unconfirmed device writes aside).
   */
  checkFlush(t0: number, deviceCopy: (bo: number) => Uint8Array | undefined): Difference | null {
    for (const s of this.shadows) {
      if (s.createdAt > t0) continue;
      const include = (p: number): boolean => s.lastCpuWrite[p]! > 0 && s.lastCpuWrite[p]! <= t0 && s.lastWrite[p]! <= t0;
      const diff = compare(s, devicePages(s, deviceCopy), 'device', include);
      if (diff !== null) return diff;
    }
    return null;
  }

  /** Invariant (d): guest memory holds every certain byte as expected. */
  checkGuest(): Difference | null {
    for (const s of this.shadows) {
      const diff = compare(s, guestPages(s), 'guest', () => true);
      if (diff !== null) return diff;
    }
    return null;
  }

  /** Invariant (b): no device write is pending, guest memory and the device hold every covered byte as expected. */
  checkCoherent(deviceCopy: (bo: number) => Uint8Array | undefined): Difference | null {
    for (const s of this.shadows) {
      if (s.pending.length > 0) {
        const w = s.pending[0]!;
        return {
          bo: s.bo.id, handle: s.handle, pages: [Math.floor(w.offset / s.pageSize)], pageCount: s.pending.length, offset: w.offset,
          expected: s.expected[w.offset]!, found: s.bo.page(Math.floor(w.offset / s.pageSize))[w.offset % s.pageSize]!, where: 'guest', note: 'a device write was never read back',
        };
      }
      const diff = compare(s, guestPages(s), 'guest', () => true) ?? compare(s, devicePages(s, deviceCopy), 'device', () => true);
      if (diff !== null) return diff;
    }
    return null;
  }

  /** Pages a CPU wrote so far in all live BOs (for the report). */
  writtenPages(): number {
    let n = 0;
    for (const s of this.shadows) for (let p = 0; p < s.pages; p++) if (s.lastCpuWrite[p]! > 0) n++;
    return n;
  }
}

/** Pages of a copy of a BO: a view of page p, or undefined when there is no copy at all. */
type PageSource = (p: number) => Uint8Array | undefined;

function guestPages(s: BoShadow): PageSource {
  return (p) => s.bo.page(p);
}

/** The device's copy, fetched only when a page is actually compared. */
function devicePages(s: BoShadow, deviceCopy: (bo: number) => Uint8Array | undefined): PageSource {
  let copy: Uint8Array | undefined | null = null;
  return (p) => {
    if (copy === null) copy = deviceCopy(s.bo.id);
    return copy?.subarray(p * s.pageSize, Math.min((p + 1) * s.pageSize, copy.length));
  };
}

/**
 * Compare a device or guest copy of the BO with the shadow on the pages
 * `include` selects: certain bytes only, and on the device covered bytes only.
 * A missing copy differs on every selected page that should hold a non-zero byte.
 */
function compare(s: BoShadow, source: PageSource, where: 'device' | 'guest', include: (p: number) => boolean): Difference | null {
  const ps = s.pageSize;
  let first: { offset: number; found: number | null } | null = null;
  let missing = false;
  const pages: number[] = [];
  let pageCount = 0;
  for (let p = 0; p < s.pages; p++) {
    if (!include(p)) continue;
    const from = p * ps;
    const actual = source(p);
    const want = s.expected.subarray(from, from + (actual?.length ?? ps));
    // Fast path: identical bytes need no masks.
    if (actual !== undefined && Buffer.compare(actual, want) === 0) continue;
    missing ||= actual === undefined;
    const to = Math.min(from + ps, where === 'device' ? s.size : from + ps);
    for (let b = from; b < to; b++) {
      if (s.uncertain[b] === 1 || (where === 'device' && s.covered[b] === 0)) continue;
      const found = actual === undefined ? null : actual[b - from]!;
      if (found === s.expected[b] || (found === null && s.expected[b] === 0)) continue;
      if (first === null) first = { offset: b, found };
      if (pages.length < 16) pages.push(p);
      pageCount++;
      break;
    }
  }
  if (first === null) return null;
  return {
    bo: s.bo.id, handle: s.handle, pages, pageCount, offset: first.offset, expected: s.expected[first.offset]!, found: first.found, where,
    note: missing ? `the ${where} has no BO ${s.bo.id}` : undefined,
  };
}
