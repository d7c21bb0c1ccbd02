import { type CacheState, Cpu, type CpuState } from './cpu.js';
import type { ArchModel } from './arch.js';
import type { Machine } from './machine.js';
import type { Mm } from './mm.js';

/**
 * A CPU with a small write-back, write-allocate data cache indexed by virtual
 * address (mm, virtual page), in front of physical memory. Lines are one page.
 * Other CPUs and DMA see physical memory only, so a write becomes visible to
 * the device when its line is written back: on eviction or on an explicit
 * flush_cache_range / flush_cache_page. Aliases (one frame mapped at two
 * virtual pages) occupy separate lines, as on real VIVT caches.
 *
 * The access path is the base CPU's: translation goes through the TLB as on
 * x86, then the returned frame offset is redirected to the line's storage.
 */
export class VivtCpu extends Cpu {
  readonly lines: number;
  // Line state, readable for inspection and state hashing (src/check); only this class writes it.
  /** Address-space id per line, -1 when the line is empty. */
  readonly lineMm: Int32Array;
  readonly lineVpn: Int32Array;
  /** 1 when the line holds data memory does not have yet. */
  readonly lineDirty: Uint8Array;
  /** Line data, one page per line. */
  readonly storage: Uint8Array;
  private readonly linePhys: Float64Array;
  private victim = 0;
  /** Lines written back to memory (evictions and flushes). */
  writebacks = 0;

  constructor(machine: Machine, id: number, tlbEntries: number, tlbWays: number, lines: number) {
    super(machine, id, tlbEntries, tlbWays);
    const ps = machine.phys.pageSize;
    this.lines = lines;
    this.lineMm = new Int32Array(lines).fill(-1);
    this.lineVpn = new Int32Array(lines);
    this.linePhys = new Float64Array(lines);
    this.lineDirty = new Uint8Array(lines);
    this.storage = new Uint8Array(lines * ps);
    this.useStorage(this.storage);
  }

  override frameForRead(mm: Mm, vpn: number, va: number): number {
    return this.line(mm.id, vpn, super.frameForRead(mm, vpn, va), false);
  }

  override frameForWrite(mm: Mm, vpn: number, va: number): number {
    return this.line(mm.id, vpn, super.frameForWrite(mm, vpn, va), true);
  }

  override saveState(into?: CpuState): CpuState {
    const s = super.saveState(into);
    const c = s.cache ?? {
      lineMm: new Int32Array(this.lines), lineVpn: new Int32Array(this.lines), lineDirty: new Uint8Array(this.lines),
      linePhys: new Float64Array(this.lines), storage: new Uint8Array(this.storage.length), victim: 0, writebacks: 0,
    };
    c.lineMm.set(this.lineMm);
    c.lineVpn.set(this.lineVpn);
    c.lineDirty.set(this.lineDirty);
    c.linePhys.set(this.linePhys);
    c.storage.set(this.storage);
    c.victim = this.victim;
    c.writebacks = this.writebacks;
    s.cache = c;
    return s;
  }

  override restoreState(s: CpuState): void {
    super.restoreState(s);
    const c: CacheState = s.cache!;
    this.lineMm.set(c.lineMm);
    this.lineVpn.set(c.lineVpn);
    this.lineDirty.set(c.lineDirty);
    this.linePhys.set(c.linePhys);
    this.storage.set(c.storage);
    this.victim = c.victim;
    this.writebacks = c.writebacks;
  }

  /** The line the next allocation replaces (round robin). */
  get nextVictim(): number {
    return this.victim;
  }

  /** Write back and drop the lines of mm in [startVpn, endVpn). Returns lines written back. */
  flushRange(mmId: number, startVpn: number, endVpn: number): number {
    let n = 0;
    for (let l = 0; l < this.lines; l++) {
      if (this.lineMm[l] === mmId && this.lineVpn[l]! >= startVpn && this.lineVpn[l]! < endVpn) n += this.evict(l);
    }
    return n;
  }

  /** Pages of mm whose line holds data memory does not have yet (for traces and invariant checks). */
  dirtyLines(mmId: number): number[] {
    const out: number[] = [];
    for (let l = 0; l < this.lines; l++) if (this.lineMm[l] === mmId && this.lineDirty[l]) out.push(this.lineVpn[l]!);
    return out.sort((a, b) => a - b);
  }

  private line(mmId: number, vpn: number, phys: number, write: boolean): number {
    const ps = this.machine.phys.pageSize;
    let l = 0;
    for (; l < this.lines; l++) if (this.lineVpn[l] === vpn && this.lineMm[l] === mmId) break;
    if (l < this.lines && this.linePhys[l] !== phys) this.evict(l); // the translation changed (COW, remap)
    if (l === this.lines || this.lineMm[l] === -1) {
      l = this.victim;
      this.victim = (this.victim + 1) % this.lines;
      this.evict(l);
      this.lineMm[l] = mmId;
      this.lineVpn[l] = vpn;
      this.linePhys[l] = phys;
      this.storage.set(this.machine.phys.bytes.subarray(phys, phys + ps), l * ps);
    }
    if (write) this.lineDirty[l] = 1;
    return l * ps;
  }

  private evict(l: number): number {
    if (this.lineMm[l] === -1) return 0;
    const ps = this.machine.phys.pageSize;
    let n = 0;
    if (this.lineDirty[l]) {
      this.machine.phys.bytes.set(this.storage.subarray(l * ps, (l + 1) * ps), this.linePhys[l]!);
      this.writebacks++;
      n = 1;
    }
    this.lineMm[l] = -1;
    this.lineDirty[l] = 0;
    return n;
  }
}

function flushVivt(machine: Machine, mm: Mm, start: number, end: number): void {
  const ps = machine.phys.pageSize;
  for (const cpu of machine.cpus) {
    if (cpu instanceof VivtCpu) cpu.flushRange(mm.id, Math.floor(start / ps), Math.ceil(end / ps));
  }
}

/**
 * x86-like MMU (hardware dirty bit, TLB caches write + dirty) with per-CPU
 * virtually indexed write-back data caches: data reaches memory, and so the
 * device, only when flushed. Cache flushes write back every CPU's lines of
 * the range.
 */
export function vivtArch(linesPerCpu = 4): ArchModel {
  return {
    name: 'vivt',
    hardwareDirty: true,
    dataCacheLines: linesPerCpu,
    flushCacheRange: flushVivt,
    flushCachePage: (machine, mm, va) => flushVivt(machine, mm, va, va + machine.phys.pageSize),
  };
}
