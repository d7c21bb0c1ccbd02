import { AccessBlockedError, InvalidArgumentError, SegvError } from './errors.js';
import { handleFault } from './fault.js';
import type { Machine } from './machine.js';
import type { Mm } from './mm.js';
import { PFN_SHIFT, PTE_DIRTY, PTE_PRESENT, PTE_WRITE, PTE_YOUNG } from './pte.js';
import { Step, type FaultKind } from './step.js';
import { Tlb, type TlbState } from './tlb.js';
import { VM_READ, VM_WRITE } from './vma.js';

const WRITE_DIRTY = PTE_WRITE | PTE_DIRTY;
const PRESENT_WRITE = PTE_PRESENT | PTE_WRITE;
/** A fault handler that keeps asking for the same fault is a bug; stop after this many. */
const MAX_FAULT_RETRIES = 16;

export interface CpuCounters {
  tlbHits: number;
  tlbMisses: number;
  /** D bits this CPU set in in-memory PTEs (hardware dirty tracking). */
  dirtyBitSets: number;
  faults: Record<FaultKind, number>;
  /** TLB-shootdown interrupts received. */
  ipis: number;
  /** TLB entries dropped by flushes (local or remote). */
  tlbEntriesDropped: number;
}

/**
 * A simulated CPU with its own TLB. The access path follows the x86 rules,
 * under which a TLB caches a translation with its write and dirty state and
 * uses it without re-reading the PTE:
 *  - a write through a cached writable+dirty entry touches no PTE at all;
 *  - a write through a cached writable clean entry sets D in the in-memory PTE
 *    with a locked read-modify-write that faults if the PTE is no longer
 *    present and writable;
 *  - anything else walks the page table or faults.
 * On an architecture without hardware dirty bits (arch.hardwareDirty false) a
 * writable clean page is treated as read-only and the first write faults.
 *
 * A TLB hit allocates nothing and calls no hook.
 */
export class Cpu {
  readonly tlb: Tlb;
  readonly counters: CpuCounters = {
    tlbHits: 0, tlbMisses: 0, dirtyBitSets: 0,
    faults: { missing: 0, wp: 0, cow: 0, dirty: 0, spurious: 0 },
    ipis: 0, tlbEntriesDropped: 0,
  };
  private readonly pageSize: number;
  /** What accesses read and write: physical memory, or a cache's line storage (see VivtCpu). */
  private bytes: Uint8Array;
  private view: DataView;
  private readonly scratch = new Uint8Array(8);
  private readonly scratchView = new DataView(this.scratch.buffer);

  constructor(readonly machine: Machine, readonly id: number, tlbEntries: number, tlbWays: number) {
    this.tlb = new Tlb(tlbEntries, tlbWays);
    this.pageSize = machine.phys.pageSize;
    this.bytes = machine.phys.bytes;
    this.view = machine.phys.view;
  }

  /** Copy the TLB and the counters into `into` (reusing it) or a new object. */
  saveState(into?: CpuState): CpuState {
    const s = into ?? { tlb: this.tlb.saveState(), counters: new Float64Array(COUNTER_WORDS), cache: null };
    if (into !== undefined) this.tlb.saveState(s.tlb);
    const c = this.counters;
    const f = c.faults;
    const w = s.counters;
    w[0] = c.tlbHits;
    w[1] = c.tlbMisses;
    w[2] = c.dirtyBitSets;
    w[3] = c.ipis;
    w[4] = c.tlbEntriesDropped;
    w[5] = f.missing;
    w[6] = f.wp;
    w[7] = f.cow;
    w[8] = f.dirty;
    w[9] = f.spurious;
    return s;
  }

  restoreState(s: CpuState): void {
    this.tlb.restoreState(s.tlb);
    const c = this.counters;
    const f = c.faults;
    const w = s.counters;
    c.tlbHits = w[0]!;
    c.tlbMisses = w[1]!;
    c.dirtyBitSets = w[2]!;
    c.ipis = w[3]!;
    c.tlbEntriesDropped = w[4]!;
    f.missing = w[5]!;
    f.wp = w[6]!;
    f.cow = w[7]!;
    f.dirty = w[8]!;
    f.spurious = w[9]!;
  }

  /** @internal Redirect data accesses to other storage (frame offsets then index into it). */
  protected useStorage(bytes: Uint8Array): void {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  // ---- typed accessors (little endian) -------------------------------------------------

  read8(mm: Mm, va: number): number {
    const vpn = Math.floor(va / this.pageSize);
    return this.bytes[this.frameForRead(mm, vpn, va) + va - vpn * this.pageSize]!;
  }

  write8(mm: Mm, va: number, value: number): void {
    const vpn = Math.floor(va / this.pageSize);
    this.bytes[this.frameForWrite(mm, vpn, va) + va - vpn * this.pageSize] = value;
  }

  read16(mm: Mm, va: number): number {
    const vpn = Math.floor(va / this.pageSize);
    const off = va - vpn * this.pageSize;
    if (off + 2 > this.pageSize) return this.readSplit(mm, va, 2).getUint16(0, true);
    return this.view.getUint16(this.frameForRead(mm, vpn, va) + off, true);
  }

  write16(mm: Mm, va: number, value: number): void {
    const vpn = Math.floor(va / this.pageSize);
    const off = va - vpn * this.pageSize;
    if (off + 2 > this.pageSize) {
      this.scratchView.setUint16(0, value, true);
      return this.write(mm, va, this.scratch.subarray(0, 2));
    }
    this.view.setUint16(this.frameForWrite(mm, vpn, va) + off, value, true);
  }

  read32(mm: Mm, va: number): number {
    const vpn = Math.floor(va / this.pageSize);
    const off = va - vpn * this.pageSize;
    if (off + 4 > this.pageSize) return this.readSplit(mm, va, 4).getUint32(0, true);
    return this.view.getUint32(this.frameForRead(mm, vpn, va) + off, true);
  }

  write32(mm: Mm, va: number, value: number): void {
    const vpn = Math.floor(va / this.pageSize);
    const off = va - vpn * this.pageSize;
    if (off + 4 > this.pageSize) {
      this.scratchView.setUint32(0, value, true);
      return this.write(mm, va, this.scratch.subarray(0, 4));
    }
    this.view.setUint32(this.frameForWrite(mm, vpn, va) + off, value, true);
  }

  readF64(mm: Mm, va: number): number {
    const vpn = Math.floor(va / this.pageSize);
    const off = va - vpn * this.pageSize;
    if (off + 8 > this.pageSize) return this.readSplit(mm, va, 8).getFloat64(0, true);
    return this.view.getFloat64(this.frameForRead(mm, vpn, va) + off, true);
  }

  writeF64(mm: Mm, va: number, value: number): void {
    const vpn = Math.floor(va / this.pageSize);
    const off = va - vpn * this.pageSize;
    if (off + 8 > this.pageSize) {
      this.scratchView.setFloat64(0, value, true);
      return this.write(mm, va, this.scratch);
    }
    this.view.setFloat64(this.frameForWrite(mm, vpn, va) + off, value, true);
  }

  read64(mm: Mm, va: number): bigint {
    const vpn = Math.floor(va / this.pageSize);
    const off = va - vpn * this.pageSize;
    if (off + 8 > this.pageSize) return this.readSplit(mm, va, 8).getBigUint64(0, true);
    return this.view.getBigUint64(this.frameForRead(mm, vpn, va) + off, true);
  }

  write64(mm: Mm, va: number, value: bigint): void {
    const vpn = Math.floor(va / this.pageSize);
    const off = va - vpn * this.pageSize;
    if (off + 8 > this.pageSize) {
      this.scratchView.setBigUint64(0, value, true);
      return this.write(mm, va, this.scratch);
    }
    this.view.setBigUint64(this.frameForWrite(mm, vpn, va) + off, value, true);
  }

  // ---- byte ranges of any length and alignment -----------------------------------------

  /**
   * Write src at va, page by page. The whole range is checked against the VMAs
   * first, so an access that would SIGSEGV part-way writes nothing.
   */
  write(mm: Mm, va: number, src: Uint8Array): void {
    this.checkRange(mm, va, src.length, true);
    let done = 0;
    while (done < src.length) {
      const a = va + done;
      const vpn = Math.floor(a / this.pageSize);
      const off = a - vpn * this.pageSize;
      const n = Math.min(this.pageSize - off, src.length - done);
      const frame = this.frameForWrite(mm, vpn, a);
      this.bytes.set(src.subarray(done, done + n), frame + off);
      done += n;
    }
  }

  /** Read into dst from va. */
  readInto(mm: Mm, va: number, dst: Uint8Array): Uint8Array {
    this.checkRange(mm, va, dst.length, false);
    let done = 0;
    while (done < dst.length) {
      const a = va + done;
      const vpn = Math.floor(a / this.pageSize);
      const off = a - vpn * this.pageSize;
      const n = Math.min(this.pageSize - off, dst.length - done);
      const frame = this.frameForRead(mm, vpn, a);
      dst.set(this.bytes.subarray(frame + off, frame + off + n), done);
      done += n;
    }
    return dst;
  }

  read(mm: Mm, va: number, length: number): Uint8Array {
    return this.readInto(mm, va, new Uint8Array(length));
  }

  /** write() that waits out AccessBlockedError (mkwrite lock, readback in flight) and retries. */
  async writeAsync(mm: Mm, va: number, src: Uint8Array): Promise<void> {
    await retryBlocked(() => this.write(mm, va, src));
  }

  async readAsync(mm: Mm, va: number, length: number): Promise<Uint8Array> {
    const dst = new Uint8Array(length);
    await retryBlocked(() => this.readInto(mm, va, dst));
    return dst;
  }

  // ---- translation -----------------------------------------------------------------------

  /** Byte offset in physical memory of the frame backing vpn, for a read. */
  frameForRead(mm: Mm, vpn: number, va: number): number {
    const tlb = this.tlb;
    const s = tlb.lookup(mm.id, vpn);
    if (s >= 0) {
      this.counters.tlbHits++;
      return (tlb.entry[s]! >>> PFN_SHIFT) * this.pageSize;
    }
    return this.frameForReadSlow(mm, vpn, va);
  }

  /** Byte offset in physical memory of the frame backing vpn, for a write. */
  frameForWrite(mm: Mm, vpn: number, va: number): number {
    const tlb = this.tlb;
    const s = tlb.lookup(mm.id, vpn);
    if (s >= 0) {
      const e = tlb.entry[s]!;
      if ((e & WRITE_DIRTY) === WRITE_DIRTY) {
        this.counters.tlbHits++;
        return (e >>> PFN_SHIFT) * this.pageSize;
      }
    }
    return this.frameForWriteSlow(mm, vpn, va, s);
  }

  private frameForReadSlow(mm: Mm, vpn: number, va: number): number {
    this.counters.tlbMisses++;
    for (let attempt = 0; attempt < MAX_FAULT_RETRIES; attempt++) {
      const pte = mm.readPte(vpn);
      if (pte & PTE_PRESENT) {
        if (!(pte & PTE_YOUNG)) mm.writePte(vpn, pte | PTE_YOUNG);
        return this.fill(mm, vpn, pte | PTE_YOUNG);
      }
      handleFault(this, mm, va, false);
    }
    throw new Error(`cpu${this.id}: read fault at 0x${va.toString(16)} did not resolve`);
  }

  private frameForWriteSlow(mm: Mm, vpn: number, va: number, slot: number): number {
    const hwDirty = this.machine.arch.hardwareDirty;
    if (slot >= 0) {
      this.counters.tlbHits++;
      const e = this.tlb.entry[slot]!;
      if (e & PTE_WRITE && hwDirty) {
        // Writable but clean: the CPU sets D in memory with a locked RMW that re-checks the PTE.
        this.machine.step(Step.DirtyBitSet, this.id, mm, vpn, e);
        const pte = mm.readPte(vpn);
        if ((pte & PRESENT_WRITE) === PRESENT_WRITE && pte >>> PFN_SHIFT === e >>> PFN_SHIFT) {
          mm.writePte(vpn, pte | PTE_DIRTY | PTE_YOUNG);
          this.counters.dirtyBitSets++;
          const s = this.tlb.lookup(mm.id, vpn);
          if (s >= 0) this.tlb.entry[s] = e | PTE_DIRTY;
          return (e >>> PFN_SHIFT) * this.pageSize;
        }
      }
      // Read-only entry, or the PTE changed under a clean entry: the CPU faults.
      const s = this.tlb.lookup(mm.id, vpn);
      if (s >= 0) this.tlb.drop(s);
      handleFault(this, mm, va, true);
    } else {
      this.counters.tlbMisses++;
    }
    for (let attempt = 0; attempt < MAX_FAULT_RETRIES; attempt++) {
      const pte = mm.readPte(vpn);
      if ((pte & PRESENT_WRITE) === PRESENT_WRITE) {
        if (pte & PTE_DIRTY) return this.fill(mm, vpn, pte);
        if (hwDirty) {
          // Page walk for a write: A and D are set in memory before the entry is cached.
          this.machine.step(Step.DirtyBitSet, this.id, mm, vpn, -1);
          const now = mm.readPte(vpn);
          if ((now & PRESENT_WRITE) === PRESENT_WRITE) {
            if (!(now & PTE_DIRTY)) this.counters.dirtyBitSets++;
            mm.writePte(vpn, now | PTE_DIRTY | PTE_YOUNG);
            return this.fill(mm, vpn, now | PTE_DIRTY | PTE_YOUNG);
          }
          continue;
        }
      }
      handleFault(this, mm, va, true);
    }
    throw new Error(`cpu${this.id}: write fault at 0x${va.toString(16)} did not resolve`);
  }

  /** Cache pte for (mm, vpn), then offer the step. */
  private fill(mm: Mm, vpn: number, pte: number): number {
    this.tlb.insert(mm.id, vpn, pte);
    mm.cpuMask[this.id] = 1;
    this.machine.step(Step.TlbFill, this.id, mm, vpn, pte);
    return (pte >>> PFN_SHIFT) * this.pageSize;
  }

  /** @internal */
  countFault(kind: FaultKind, mm: Mm, va: number): void {
    this.counters.faults[kind]++;
    this.machine.trace?.({ type: 'fault', cpu: this.id, mm: mm.id, address: va, kind });
  }

  private readSplit(mm: Mm, va: number, n: number): DataView {
    this.readInto(mm, va, this.scratch.subarray(0, n));
    return this.scratchView;
  }

  private checkRange(mm: Mm, va: number, length: number, write: boolean): void {
    if (!Number.isInteger(va) || va < 0 || !Number.isInteger(length) || length < 0) {
      throw new InvalidArgumentError(`bad access range 0x${va.toString(16)}+${length}`);
    }
    const need = write ? VM_WRITE : VM_READ;
    for (let a = va; a < va + length; ) {
      const vma = mm.findVma(a);
      if (vma === null || !(vma.flags & need)) {
        throw new SegvError(`${write ? 'write' : 'read'} at 0x${a.toString(16)} outside a ${write ? 'writable' : 'readable'} mapping`, this.id, a, write);
      }
      a = vma.end;
    }
  }
}

const COUNTER_WORDS = 10;

/** A copy of a CPU's TLB, counters and (VivtCpu) cache lines (saveState / restoreState). */
export interface CpuState {
  tlb: TlbState;
  counters: Float64Array;
  cache: CacheState | null;
}

/** A VivtCpu's cache lines. */
export interface CacheState {
  lineMm: Int32Array;
  lineVpn: Int32Array;
  lineDirty: Uint8Array;
  linePhys: Float64Array;
  storage: Uint8Array;
  victim: number;
  writebacks: number;
}

async function retryBlocked(access: () => void): Promise<void> {
  for (;;) {
    try {
      access();
      return;
    } catch (e) {
      if (!(e instanceof AccessBlockedError) || e.until === null) throw e;
      await e.until;
    }
  }
}
