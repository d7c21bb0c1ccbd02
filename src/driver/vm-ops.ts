import {
  VM_FAULT_NOPAGE, VM_FAULT_OK, VM_FAULT_RETRY, VM_FAULT_SIGBUS, VM_MAYWRITE, VM_RAND_READ, VM_SHARED, VM_WRITE, type VmFault, type VmOperations,
  faultAround, finishMkwriteFault,
} from '../core/index.js';
import type { Bo, BoSpace } from './bo.js';
import type { DirtyConfig } from './config.js';

/** is_cow_mapping: private, and may be written (opened for writing). */
const isCow = (flags: number): boolean => (flags & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE;

/** How the fault path gets device-changed data into guest memory before mapping it. */
export interface ReadCoherence {
  /** Start (or join) the readback of BO page `page` and what precedes it; settles when it landed. */
  readback(bo: Bo, page: number): Promise<void>;
}

/**
 * vm_ops of BO mappings (vmw_bo_vm_fault / vmw_bo_vm_mkwrite).
 *
 * Both handlers take the BO's reservation, which the tracker holds while it
 * scans, switches method or harvests: while it is held they ask for a retry
 * (VM_FAULT_RETRY with the promise of its release), so a fault never acts on
 * a method or a bitmap a scan is half-way through changing.
 *
 * fault: SIGBUS outside a BO; a page the device changed waits for its readback
 * (VM_FAULT_RETRY with the promise, so the CPU access retries after it landed);
 * prefault up to `prefault` pages (1 for VM_RAND_READ) without crossing the BO
 * end or the next device-changed page; read-only PTEs when the tracker says
 * so (DirtyTracker.mapWritable: MKWRITE).
 *
 * mkwrite: tells the tracker *before* the PTE becomes writable,
 * and makes it writable before releasing the reservation (VM_FAULT_NOPAGE):
 * released first, as vmwgfx does, a scan could transfer the bit in between and
 * the page would then take writes no scan sees (config.mkwriteFinishesUnderReservation).
 *
 * beforeUnmap: a user munmap lets the tracker harvest what the PTEs of the
 * range hold (PAGETABLE dirty bits, soft-dirty bits, uffd-wp state) before
 * the zap destroys it.
 *
 * mmap / mprotect: TTM's copy-on-write rule — a private mapping of a BO may be
 * read-only or PROT_NONE, never writable, and cannot be made writable.
 */
export function boVmOps(space: () => BoSpace, config: DirtyConfig, coherence: ReadCoherence): VmOperations {
  const lookup = (vmf: VmFault): [Bo, number] | null => {
    const bo = space().boAt(vmf.pgoff);
    return bo === null ? null : [bo, vmf.pgoff - bo.offset];
  };
  /**
   * Run a handler's body holding bo's reservation (ttm_bo_vm_reserve); when a
   * scan holds it, ask for a retry once it is released instead.
   */
  const reserved = (bo: Bo, vmf: VmFault, who: string, body: () => number): number => {
    if (!config.handlersTakeReservation) return body();
    if (bo.reservation.held) {
      vmf.retryUntil = bo.reservation.released();
      return VM_FAULT_RETRY;
    }
    return bo.reservation.hold(who, body);
  };
  return {
    fault(vmf) {
      const hit = lookup(vmf);
      if (hit === null) return VM_FAULT_SIGBUS;
      const [bo, page] = hit;
      return reserved(bo, vmf, 'fault', () => {
        if (bo.deviceNewer.test(page)) {
          vmf.retryUntil = coherence.readback(bo, page);
          return VM_FAULT_RETRY;
        }
        let count = vmf.vma.flags & VM_RAND_READ ? 1 : config.prefault;
        count = Math.min(count, bo.deviceNewer.findNextSet(page, bo.pages) - page);
        return faultAround(vmf, count, bo.tracker === null || bo.tracker.mapWritable(page));
      });
    },
    beforeUnmap(vma, start, end) {
      // The zap drops what only the PTEs know (D bits, soft-dirty, uffd-wp state): the tracker keeps it first.
      space().forEachBoIn(vma.pgoffAt(start), vma.pgoffAt(end - 1) + 1, (bo, from, to) => bo.tracker?.beforeUnmap(from, to));
    },
    // TTM's COW rule (C9 in docs/fidelity.md): a private mapping of a BO may never be writable —
    // its writes would go to anonymous copies the tracker never sees.
    mmap(flags) {
      return isCow(flags) && flags & VM_WRITE ? 'a private (copy-on-write) mapping of a BO cannot be writable' : null;
    },
    mprotect(vma, _start, _end, newFlags) {
      return isCow(vma.flags) && newFlags & VM_WRITE ? 'a private (copy-on-write) mapping of a BO cannot become writable' : null;
    },
    pfnMkwrite(vmf) {
      const hit = lookup(vmf);
      if (hit === null) return VM_FAULT_SIGBUS;
      const [bo, page] = hit;
      // vmwgfx clears FAULT_FLAG_ALLOW_RETRY and sleeps on the reservation; a
      // retry that redoes the whole fault is the same as far as the BO can see.
      return reserved(bo, vmf, 'mkwrite', () => {
        bo.tracker?.mkwrite(page);
        if (!config.mkwriteFinishesUnderReservation) return VM_FAULT_OK;
        finishMkwriteFault(vmf);
        return VM_FAULT_NOPAGE;
      });
    },
  };
}
