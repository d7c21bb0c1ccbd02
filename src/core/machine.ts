import { type ArchModel, swDirty, x86 } from './arch.js';
import { Cpu, type CpuState } from './cpu.js';
import { VivtCpu, vivtArch } from './vivt.js';
import { InvalidArgumentError, requireInteger } from './errors.js';
import { deviceFileOps, type VmOperations } from './fault.js';
import { Mapping, type MappingKind, type MappingState } from './mapping.js';
import { Mm, type MmState } from './mm.js';
import { PhysicalMemory, type PhysState } from './phys.js';
import type { WalkLocals } from './pte-modify.js';
import type { StepHook, StepKind, TraceSink } from './step.js';

export interface MachineOptions {
  /** Bytes per page, a power of two (default 4096). */
  pageSize?: number;
  /** Physical memory in bytes (default 64 MiB); rounded down to whole pages. */
  memoryBytes?: number;
  /** Number of CPUs (default 2, at most 64). */
  cpus?: number;
  /** TLB entries per CPU (default 64) and associativity (default 4); entries / ways must be a power of two. */
  tlbEntries?: number;
  tlbWays?: number;
  /** 'x86' (default), 'sw-dirty', 'vivt' (4 cache lines per CPU), or a custom ArchModel. */
  arch?: ArchName | ArchModel;
  /**
   * Range flushes of more pages than this flush the whole mm on each CPU
   * (x86's tlb_single_page_flush_ceiling, default 33).
   */
  tlbFlushCeiling?: number;
  /**
   * Kernel-faithful walk_page_mapping: a VMA that test_walk skips ends the
   * whole walk, because the walker treats test_walk's positive "skip" as a
   * stop and the helpers turn it into success. Default false: skip it and go
   * on, because the faithful behaviour silently leaves later shared mappings
   * unprotected and uncleaned.
   */
  walkStopsAtSkippedVma?: boolean;
  /**
   * Flush the whole notifier range when another deferred flush is pending on
   * the mm (mm_tlb_flush_nested): that walker may have changed PTEs this
   * one then found already changed and left out of its window, and may not
   * have flushed them yet. Default true; false reproduces the bug that rule
   * fixed.
   */
  nestedFlushRule?: boolean;
  /**
   * CONFIG_MEM_SOFT_DIRTY: new VMAs are soft-dirty, write faults set the
   * soft-dirty bit, clear_refs can reset it (src/core/soft-dirty.ts).
   * Default false, as on kernels built without it.
   */
  softDirty?: boolean;
  /**
   * The page walker takes each PTE table's lock while it visits it (default
   * true). false reproduces walk_pte_range before its 2019 fix: a
   * fault can install a PTE in a slot a helper holds cleared, and the helper's
   * commit then overwrites it.
   */
  walkTakesPteLock?: boolean;
  /**
   * The helpers build the new PTE from the snapshot they tested instead of
   * from what modify_prot_start returned (default false). true reproduces the
   * class of bug PAGEMAP_SCAN once had: A/D bits the MMU set in between are lost.
   */
  pteFromSnapshot?: boolean;
  /**
   * A VM_FAULT_RETRY from pfn_mkwrite is not an error, so the fault finishes
   * as if the handler had succeeded (default false). true reproduces
   * mm/memory.c before its 2019 fix: the PTE becomes writable although
   * the handler recorded nothing.
   */
  mkwriteRetryIgnored?: boolean;
  /**
   * A VMA merge keeps the flags of the VMA it grows, dropping the other's
   * VM_SOFTDIRTY (default false). Linux marks every new or expanded VMA
   * soft-dirty, because a range unmapped and mapped again in place lost its
   * PTEs' soft-dirty bits with the unmap; true reproduces a merge that
   * forgets this, so such a range reads clean.
   */
  mergeDropsSoftDirty?: boolean;
  /**
   * PAGEMAP_SCAN with PM_SCAN_WP_MATCHING walks and write-protects VMAs that
   * are not registered for userfaultfd write-protect (default false). true
   * reproduces the bug syzbot found: a later write fault there, which
   * userfaultfd does not handle, makes the PTE writable with its uffd-wp bit
   * still set (the kernel WARNs).
   */
  scanProtectsUnregistered?: boolean;
  /**
   * PAGEMAP_SCAN and clear_refs write-protect PTEs without the TLB flush
   * that must follow (default false). true is a planted bug for the checker:
   * a CPU keeps writing through its stale writable entry without faulting,
   * so the write is never marked.
   */
  scanWithoutTlbFlush?: boolean;
}

/** A copy of a Machine's state (saveState / restoreState). */
export interface MachineState {
  phys: PhysState;
  counters: number[];
  cpus: CpuState[];
  mms: MmState[];
  mappings: MappingState[];
}

export type ArchName = 'x86' | 'sw-dirty' | 'vivt';
export const ARCH_NAMES: readonly ArchName[] = ['x86', 'sw-dirty', 'vivt'];

export interface MachineConfig {
  readonly pageSize: number;
  readonly memoryBytes: number;
  readonly cpus: number;
  readonly tlbEntries: number;
  readonly tlbWays: number;
  readonly tlbFlushCeiling: number;
  readonly walkStopsAtSkippedVma: boolean;
  readonly nestedFlushRule: boolean;
  readonly softDirty: boolean;
  readonly walkTakesPteLock: boolean;
  readonly pteFromSnapshot: boolean;
  readonly mkwriteRetryIgnored: boolean;
  readonly mergeDropsSoftDirty: boolean;
  readonly scanProtectsUnregistered: boolean;
  readonly scanWithoutTlbFlush: boolean;
}

export interface MachineCounters {
  /** flush_tlb_range / page / mm calls. */
  tlbFlushes: number;
  /** Shootdown IPIs sent (one per remote CPU per flush). */
  ipis: number;
  /** Huge PMD/PUD entries the dirty helpers skipped. */
  hugeEntriesSkipped: number;
}

/**
 * The simulated machine: physical memory, CPUs, address spaces, the TLB
 * maintenance operations that span CPUs, and the step hook / trace sink that
 * make interleavings controllable and observable. No I/O.
 */
export class Machine {
  readonly config: MachineConfig;
  readonly arch: ArchModel;
  readonly phys: PhysicalMemory;
  readonly cpus: Cpu[] = [];
  readonly mms: Mm[] = [];
  /** Mappings made with createMapping. */
  readonly mappings: Mapping[] = [];
  readonly counters: MachineCounters = { tlbFlushes: 0, ipis: 0, hugeEntriesSkipped: 0 };
  /** Interleaving hook (see step.ts); null costs nothing. */
  stepHook: StepHook | null = null;
  /** Told of every dirty-helper walk as it starts, with its live locals (for state hashing); null costs nothing. */
  walkObserver: ((walk: WalkLocals) => void) | null = null;
  /** Event sink for traces; null costs nothing. */
  trace: TraceSink | null = null;

  constructor(opts: MachineOptions = {}) {
    const pageSize = opts.pageSize ?? 4096;
    const memoryBytes = opts.memoryBytes ?? 64 << 20;
    const cpus = opts.cpus ?? 2;
    requireInteger('cpus', cpus, 1, 64);
    requireInteger('memoryBytes', memoryBytes, 1);
    this.config = {
      pageSize,
      memoryBytes,
      cpus,
      tlbEntries: opts.tlbEntries ?? 64,
      tlbWays: opts.tlbWays ?? 4,
      tlbFlushCeiling: opts.tlbFlushCeiling ?? 33,
      walkStopsAtSkippedVma: opts.walkStopsAtSkippedVma ?? false,
      nestedFlushRule: opts.nestedFlushRule ?? true,
      softDirty: opts.softDirty ?? false,
      walkTakesPteLock: opts.walkTakesPteLock ?? true,
      pteFromSnapshot: opts.pteFromSnapshot ?? false,
      mkwriteRetryIgnored: opts.mkwriteRetryIgnored ?? false,
      mergeDropsSoftDirty: opts.mergeDropsSoftDirty ?? false,
      scanProtectsUnregistered: opts.scanProtectsUnregistered ?? false,
      scanWithoutTlbFlush: opts.scanWithoutTlbFlush ?? false,
    };
    requireInteger('tlbFlushCeiling', this.config.tlbFlushCeiling, 0);
    const arch = opts.arch ?? 'x86';
    if (typeof arch === 'string' && !ARCH_NAMES.includes(arch)) {
      throw new InvalidArgumentError(`unknown arch '${arch}' (${ARCH_NAMES.join(', ')})`);
    }
    this.arch = arch === 'x86' ? x86 : arch === 'sw-dirty' ? swDirty : arch === 'vivt' ? vivtArch() : arch;
    this.phys = new PhysicalMemory(pageSize, Math.floor(memoryBytes / pageSize));
    const lines = this.arch.dataCacheLines;
    for (let i = 0; i < cpus; i++) {
      const { tlbEntries, tlbWays } = this.config;
      this.cpus.push(lines > 0 ? new VivtCpu(this, i, tlbEntries, tlbWays, lines) : new Cpu(this, i, tlbEntries, tlbWays));
    }
  }

  get pageSize(): number {
    return this.config.pageSize;
  }

  createMm(): Mm {
    const mm = new Mm(this);
    this.mms.push(mm);
    return mm;
  }

  /**
   * A page-offset space of nrPages, backed by fresh frames unless populate is
   * false. kind 'shmem' makes a memfd-like file: its VMAs are not PFN maps
   * (so userfaultfd and PAGEMAP_SCAN accept them); give it shmemFileOps().
   */
  createMapping(nrPages: number, opts: { ops?: VmOperations; name?: string; populate?: boolean; kind?: MappingKind } = {}): Mapping {
    const m = new Mapping(this, nrPages, opts.ops ?? deviceFileOps(), opts.name);
    if (opts.kind !== undefined) m.kind = opts.kind;
    if (opts.populate ?? true) m.populate();
    this.mappings.push(m);
    return m;
  }

  /**
   * Copy everything the simulation changes — memory, CPUs (TLBs, caches,
   * counters), address spaces (page tables, VMAs), the mappings' i_mmap sets —
   * into `into` (reusing its arrays) or a new object. With restoreState, the
   * explorer returns to a point of an execution without rebuilding the machine.
   * Address spaces and mappings created after the save are not part of it.
   */
  saveState(into?: MachineState): MachineState {
    const s = into ?? { phys: this.phys.saveState(), counters: [0, 0, 0], cpus: [], mms: [], mappings: [] };
    if (into !== undefined) this.phys.saveState(s.phys);
    const c = this.counters;
    s.counters[0] = c.tlbFlushes;
    s.counters[1] = c.ipis;
    s.counters[2] = c.hugeEntriesSkipped;
    this.cpus.forEach((cpu, i) => (s.cpus[i] = cpu.saveState(s.cpus[i])));
    this.mms.forEach((mm, i) => (s.mms[i] = mm.saveState(s.mms[i])));
    this.mappings.forEach((m, i) => (s.mappings[i] = m.saveState(s.mappings[i])));
    return s;
  }

  restoreState(s: MachineState): void {
    this.phys.restoreState(s.phys);
    this.counters.tlbFlushes = s.counters[0]!;
    this.counters.ipis = s.counters[1]!;
    this.counters.hugeEntriesSkipped = s.counters[2]!;
    for (let i = 0; i < this.cpus.length; i++) this.cpus[i]!.restoreState(s.cpus[i]!);
    for (let i = 0; i < s.mms.length; i++) this.mms[i]!.restoreState(s.mms[i]!);
    for (let i = 0; i < s.mappings.length; i++) this.mappings[i]!.restoreState(s.mappings[i]!);
  }

  /** Offer an interleaving point to the hook. */
  step(kind: StepKind, actor: number, mm: Mm, vpn: number, detail = 0): void {
    const h = this.stepHook;
    if (h !== null) h(kind, actor, mm, vpn, detail);
  }

  /**
   * flush_tlb_range: every CPU in the mm's cpumask drops its entries of
   * [start, end). The initiator (a CPU id, or -1 for none) flushes locally;
   * every other CPU in the mask gets an IPI.
   */
  flushTlbRange(mm: Mm, start: number, end: number, initiator = -1): void {
    const ps = this.config.pageSize;
    const sv = Math.floor(start / ps);
    const ev = Math.ceil(end / ps);
    const whole = ev - sv > this.config.tlbFlushCeiling;
    this.shootdown(mm, start, end, initiator, (cpu) => (whole ? cpu.tlb.flushMm(mm.id) : cpu.tlb.flushRange(mm.id, sv, ev)));
  }

  flushTlbPage(mm: Mm, va: number, initiator = -1): void {
    const ps = this.config.pageSize;
    const vpn = Math.floor(va / ps);
    this.shootdown(mm, vpn * ps, (vpn + 1) * ps, initiator, (cpu) => cpu.tlb.flushPage(mm.id, vpn));
  }

  flushTlbMm(mm: Mm, initiator = -1): void {
    this.shootdown(mm, 0, Infinity, initiator, (cpu) => cpu.tlb.flushMm(mm.id));
  }

  /** flush_cache_range: a no-op unless the arch has virtually indexed caches. */
  flushCacheRange(mm: Mm, start: number, end: number): void {
    this.arch.flushCacheRange(this, mm, start, end);
    this.trace?.({ type: 'cache-flush', mm: mm.id, start, end, page: false });
  }

  /** flush_cache_page. */
  flushCachePage(mm: Mm, va: number): void {
    this.arch.flushCachePage(this, mm, va);
    this.trace?.({ type: 'cache-flush', mm: mm.id, start: va, end: va + this.config.pageSize, page: true });
  }

  private shootdown(mm: Mm, start: number, end: number, initiator: number, flush: (cpu: Cpu) => number): void {
    this.counters.tlbFlushes++;
    const targets: number[] | null = this.trace === null ? null : [];
    let dropped = 0;
    for (const cpu of this.cpus) {
      if (mm.cpuMask[cpu.id] === 0) continue;
      const n = flush(cpu);
      cpu.counters.tlbEntriesDropped += n;
      dropped += n;
      if (cpu.id !== initiator) {
        cpu.counters.ipis++;
        this.counters.ipis++;
      }
      targets?.push(cpu.id);
    }
    if (targets !== null) this.trace?.({ type: 'tlb-flush', mm: mm.id, start, end, targets, dropped, initiator });
  }
}
