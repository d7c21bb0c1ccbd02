import type { Cpu } from './cpu.js';
import { AccessBlockedError, InvalidArgumentError, VgpuError, WouldDeadlockError } from './errors.js';
import type { Mm } from './mm.js';
import { walkPageRange, type MmWalk, type WalkOps } from './pagewalk.js';
import { PteChange, type WalkLocals, modifyPte, walkThenFlush } from './pte-modify.js';
import { PTE_NONE, PTE_PRESENT, PTE_UFFD_MARKER, PTE_UFFD_WP, PTE_WRITE } from './pte.js';
import { VM_MAYWRITE, VM_PFNMAP, VM_UFFD_WP, type Vma } from './vma.js';

/**
 * userfaultfd write-protect, as Linux 6.18 does it
 * for shmem VMAs: register/unregister a range, UFFDIO_WRITEPROTECT, and the
 * write fault on a protected page — delivered to a handler (sync mode) or
 * resolved by the "kernel" itself by clearing the bit (async mode,
 * UFFD_FEATURE_WP_ASYNC). Protection lives in the PTE (PTE_UFFD_WP, never
 * together with PTE_WRITE); an unmapped protected page keeps a marker
 * (PTE_UFFD_MARKER) so it stays protected. PAGEMAP_SCAN is pagemap-scan.ts.
 *
 * One userfaultfd per simulated mm (Linux allows several; nothing here needs more).
 */

export const UFFD_API = 0xaa;
export const UFFD_FEATURE_WP_UNPOPULATED = 1 << 13;
export const UFFD_FEATURE_WP_ASYNC = 1 << 15;
const SUPPORTED_FEATURES = UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_WP_ASYNC;

/** An errno the kernel returns for a userfaultfd or pagemap request (EINVAL uses InvalidArgumentError). */
export class KernelError extends VgpuError {
  constructor(code: 'ENOENT' | 'EPERM' | 'EBUSY' | 'EEXIST', message: string) {
    super(code, message);
  }
}

/** What a sync-mode handler reads from the descriptor (struct uffd_msg, UFFD_EVENT_PAGEFAULT). */
export interface UffdMessage {
  /** Page-aligned faulting address. */
  readonly address: number;
  /** Always true here: only write-protect faults are delivered. */
  readonly wp: boolean;
  readonly cpu: number;
}

interface Waiter {
  promise: Promise<void>;
  wake: () => void;
}

const contexts = new WeakMap<Mm, Userfaultfd>();

/** The userfaultfd an mm's VM_UFFD_WP VMAs are registered with, or null. */
export function userfaultfdOf(mm: Mm): Userfaultfd | null {
  return contexts.get(mm) ?? null;
}

export class Userfaultfd {
  readonly features: number;
  /**
   * Sync mode: called at the fault, before the faulting access blocks. It may
   * resolve the fault right there (writeProtect(..., false)); the access then
   * goes on without blocking.
   */
  onMessage: ((msg: UffdMessage) => void) | null = null;
  private readonly queue: UffdMessage[] = [];
  /** Blocked writers by vpn; woken by an un-protect, unregister or close. */
  private readonly waiters = new Map<number, Waiter>();
  private closed = false;

  /** userfaultfd() + UFFDIO_API with `features`. */
  constructor(readonly mm: Mm, features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED) {
    if (features & ~SUPPORTED_FEATURES) throw new InvalidArgumentError(`unsupported userfaultfd features 0x${features.toString(16)}`);
    if (contexts.has(mm)) throw new KernelError('EBUSY', `mm${mm.id} already has a userfaultfd (the simulator supports one per mm)`);
    // WP_ASYNC implies WP_UNPOPULATED.
    this.features = features & UFFD_FEATURE_WP_ASYNC ? features | UFFD_FEATURE_WP_UNPOPULATED : features;
    contexts.set(mm, this);
  }

  get async(): boolean {
    return (this.features & UFFD_FEATURE_WP_ASYNC) !== 0;
  }

  /**
   * UFFDIO_REGISTER with UFFDIO_REGISTER_MODE_WP. Holes inside the range are
   * allowed; a range with no VMA at all is EINVAL, as is a VMA userfaultfd
   * cannot track (a PFN map, or not opened for writing). Splits VMAs at the
   * range's ends.
   */
  register(start: number, len: number): void {
    const end = this.checkRange(start, len);
    const vmas = this.vmasIn(start, end);
    if (vmas.length === 0) throw new InvalidArgumentError(`UFFDIO_REGISTER: no mapping in 0x${start.toString(16)}+${len}`);
    for (const v of vmas) {
      if (v.flags & VM_PFNMAP || !(v.flags & VM_MAYWRITE)) throw new InvalidArgumentError(`UFFDIO_REGISTER: ${v} cannot be tracked by userfaultfd`);
    }
    for (const v of this.clip(vmas, start, end)) v.flags |= VM_UFFD_WP;
    this.mm.mergeVmas(start, end);
  }

  /**
   * UFFDIO_UNREGISTER: every page of the range becomes unprotected (markers
   * go, bits clear) and its VMAs unregistered; blocked writers there wake.
   */
  unregister(start: number, len: number): void {
    const end = this.checkRange(start, len);
    const vmas = this.vmasIn(start, end);
    if (vmas.length === 0) throw new InvalidArgumentError(`UFFDIO_UNREGISTER: no mapping in 0x${start.toString(16)}+${len}`);
    for (const v of this.clip(vmas.filter((x) => x.flags & VM_UFFD_WP), start, end)) {
      uffdWpRange(v, v.start, v.end, false);
      v.flags &= ~VM_UFFD_WP;
    }
    this.mm.mergeVmas(start, end);
    this.wakeRange(start, end);
  }

  /**
   * UFFDIO_WRITEPROTECT: protect (wp) or un-protect [start, start + len),
   * VMA by VMA in address order. Holes are skipped; the first VMA that is
   * not registered ends the call with ENOENT after the earlier VMAs were
   * changed (as Linux does). Un-protecting wakes writers blocked there
   * unless dontWake.
   */
  writeProtect(start: number, len: number, wp: boolean, dontWake = false): void {
    const end = this.checkRange(start, len);
    const vmas = this.vmasIn(start, end);
    if (vmas.length === 0) throw new KernelError('ENOENT', `UFFDIO_WRITEPROTECT: no mapping in 0x${start.toString(16)}+${len}`);
    for (const v of vmas) {
      if (!(v.flags & VM_UFFD_WP)) throw new KernelError('ENOENT', `UFFDIO_WRITEPROTECT: ${v} is not registered for write-protect`);
      uffdWpRange(v, Math.max(start, v.start), Math.min(end, v.end), wp);
    }
    if (!wp && !dontWake) this.wakeRange(start, end);
  }

  /** Messages of sync-mode faults not read yet (read(2) on the descriptor). */
  read(): UffdMessage[] {
    return this.queue.splice(0);
  }

  /** close(): every VMA is unregistered (protection stays in the PTEs, as the kernel leaves it), writers wake. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const v of this.mm.vmas) v.flags &= ~VM_UFFD_WP;
    for (const w of this.waiters.values()) w.wake();
    this.waiters.clear();
    contexts.delete(this.mm);
  }

  /** @internal the fault path of a sync-mode context: queue, tell the handler, and block unless it resolved. */
  deliver(cpu: Cpu, vpn: number): void {
    const msg: UffdMessage = { address: vpn * this.mm.pageSize, wp: true, cpu: cpu.id };
    this.queue.push(msg);
    this.onMessage?.(msg);
    if (!(this.mm.readPte(vpn) & PTE_UFFD_WP)) return;
    let w = this.waiters.get(vpn);
    if (w === undefined) {
      let wake!: () => void;
      const promise = new Promise<void>((resolve) => (wake = resolve));
      w = { promise, wake };
      this.waiters.set(vpn, w);
    }
    throw new AccessBlockedError('userfault', cpu.id, msg.address, true, w.promise);
  }

  private wakeRange(start: number, end: number): void {
    const ps = this.mm.pageSize;
    for (const [vpn, w] of this.waiters) {
      if (vpn * ps >= start && vpn * ps < end) {
        w.wake();
        this.waiters.delete(vpn);
      }
    }
  }

  private checkRange(start: number, len: number): number {
    const ps = this.mm.pageSize;
    if (this.closed) throw new InvalidArgumentError('userfaultfd is closed');
    if (!Number.isInteger(start) || !Number.isInteger(len) || start < 0 || len <= 0 || start % ps !== 0 || len % ps !== 0) {
      throw new InvalidArgumentError(`userfaultfd range 0x${start.toString(16)}+${len} must be page aligned and non-empty`);
    }
    return start + len;
  }

  private vmasIn(start: number, end: number): Vma[] {
    return this.mm.vmas.filter((v) => v.start < end && v.end > start);
  }

  /** The VMAs of [start, end), split so that none sticks out of it. */
  private clip(vmas: Vma[], start: number, end: number): Vma[] {
    for (const v of vmas) {
      if (v.mapping.iMmapReaders > 0) throw new WouldDeadlockError(`splitting ${v} needs the i_mmap lock a walker holds`);
    }
    return vmas.map((v0) => {
      let v = v0;
      if (v.start < start) v = this.mm.split(v, start);
      if (v.end > end) this.mm.split(v, end);
      return v;
    });
  }
}

/**
 * The write fault on a uffd-wp protected present PTE of a registered VMA
 * (do_wp_page's userfaultfd branch). Async: clear the bit and return the new
 * PTE; the fault goes on as an ordinary write-protect fault (no flush needed:
 * only a software bit went away). Sync: hand the fault to the handler and
 * block (AccessBlockedError) unless it resolved it.
 */
export function userfaultWpFault(cpu: Cpu, vma: Vma, vpn: number, pte: number): number {
  const mm = vma.mm;
  const ctx = contexts.get(mm);
  if (ctx !== undefined && !ctx.async) {
    ctx.deliver(cpu, vpn);
    return mm.readPte(vpn);
  }
  const now = pte & ~PTE_UFFD_WP;
  mm.writePte(vpn, now);
  return now;
}

/** State of one uffdWpRange walk (WalkLocals, for the checker). */
class UffdWpWalk implements WalkLocals {
  total = 0;
  vmaIndex = 1;
  readonly pte: PteChange;

  constructor(mm: Mm, readonly wp: boolean, startVpn: number, endVpn: number) {
    this.pte = new PteChange(mm.machine);
    this.pte.resetWindow(startVpn, endVpn);
  }
}

function protectTable(table: Int32Array, from: number, to: number, base: number, walk: MmWalk<UffdWpWalk>): number {
  const w = walk.private;
  const mm = walk.mm;
  for (let i = from; i < to; i++) {
    const pte = table[i]!;
    const vpn = base + i;
    if (w.wp) {
      if (pte & PTE_UFFD_WP) continue;
      if (pte === PTE_NONE) {
        // Markers for unpopulated pages: shmem VMAs always use them (userfaultfd_wp_use_markers).
        mm.pageTable.set(vpn, PTE_UFFD_MARKER);
        continue;
      }
      modifyPte(mm, table, i, vpn, pte, PTE_UFFD_WP, PTE_WRITE, w.pte);
    } else {
      if (!(pte & PTE_UFFD_WP)) continue;
      if (!(pte & PTE_PRESENT)) {
        mm.pageTable.set(vpn, PTE_NONE);
        continue;
      }
      // Resolving leaves the entry read-only: the next write takes an ordinary write fault.
      modifyPte(mm, table, i, vpn, pte, 0, PTE_UFFD_WP, w.pte);
    }
    w.total++;
  }
  return 0;
}

/** Protecting an unpopulated range allocates its PTE tables to hold the markers. */
function protectHole(sv: number, ev: number, walk: MmWalk<UffdWpWalk>): number {
  if (!walk.private.wp) return 0;
  const pt = walk.mm.pageTable;
  for (let v = sv; v < ev; v++) pt.set(v, PTE_UFFD_MARKER);
  return 0;
}

const uffdWpOps: WalkOps<UffdWpWalk> = { pteTable: protectTable, pteHole: protectHole };

/**
 * uffd_wp_range: change_protection with MM_CP_UFFD_WP (wp) or
 * MM_CP_UFFD_WP_RESOLVE of [start, end) inside one registered VMA, bracketed
 * by mmu notifiers. One TLB flush over the entries that changed follows the
 * walk, after the PTE locks are released (the mmu_gather's deferred flush),
 * with the mm's flush-pending count raised meanwhile; when another walker's
 * flush is pending too, the flush covers the whole range (the nested-flush
 * rule of tlb_finish_mmu: that walker may have changed PTEs this one then
 * skipped as already protected).
 */
export function uffdWpRange(vma: Vma, start: number, end: number, wp: boolean): void {
  const mm = vma.mm;
  const machine = mm.machine;
  const ps = mm.pageSize;
  const range = mm.notifyStart(start, end, 'protection-vma');
  const w = new UffdWpWalk(mm, wp, start / ps, end / ps);
  machine.walkObserver?.(w);
  walkThenFlush(mm, () => walkPageRange(mm, start, end, uffdWpOps, w), () => {
    const c = w.pte;
    if (machine.config.nestedFlushRule && mm.tlbFlushNested()) machine.flushTlbRange(mm, start, end);
    else if (c.flushEnd > c.flushStart) machine.flushTlbRange(mm, c.flushStart * ps, c.flushEnd * ps);
    mm.notifyEnd(range);
  });
}
