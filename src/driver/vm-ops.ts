import {
  VM_FAULT_OK, VM_FAULT_RETRY, VM_FAULT_SIGBUS, VM_RAND_READ, type VmFault, type VmOperations, faultAround,
} from '../core/index.js';
import type { Bo, BoSpace } from './bo.js';
import type { DirtyConfig } from './config.js';

/** How the fault path gets device-changed data into guest memory before mapping it. */
export interface ReadCoherence {
  /** Start (or join) the readback of BO page `page` and what precedes it; settles when it landed. */
  readback(bo: Bo, page: number): Promise<void>;
}

/**
 * vm_ops of BO mappings (vmw_bo_vm_fault / vmw_bo_vm_mkwrite, §3.7).
 *
 * fault: SIGBUS outside a BO; a page the device changed waits for its readback
 * (VM_FAULT_RETRY with the promise, so the CPU access retries after it landed);
 * prefault up to `prefault` pages (1 for VM_RAND_READ) without crossing the BO
 * end or the next device-changed page; read-only PTEs when tracked in MKWRITE.
 *
 * mkwrite: records the page in the tracker *before* core mm makes the PTE
 * writable, so no write can land unrecorded.
 *
 * beforeUnmap: a user munmap harvests the PAGETABLE dirty bits of the range
 * before the zap destroys them.
 */
export function boVmOps(space: () => BoSpace, config: DirtyConfig, coherence: ReadCoherence): VmOperations {
  const lookup = (vmf: VmFault): [Bo, number] | null => {
    const bo = space().boAt(vmf.pgoff);
    return bo === null ? null : [bo, vmf.pgoff - bo.offset];
  };
  return {
    fault(vmf) {
      const hit = lookup(vmf);
      if (hit === null) return VM_FAULT_SIGBUS;
      const [bo, page] = hit;
      if (bo.deviceNewer.test(page)) {
        vmf.retryUntil = coherence.readback(bo, page);
        return VM_FAULT_RETRY;
      }
      let count = vmf.vma.flags & VM_RAND_READ ? 1 : config.prefault;
      count = Math.min(count, bo.deviceNewer.findNextSet(page, bo.pages) - page);
      const writable = !(bo.tracker !== null && bo.tracker.method === 'mkwrite');
      return faultAround(vmf, count, writable);
    },
    beforeUnmap(vma, start, end) {
      // The zap would drop PAGETABLE D bits: harvest them into the tracker first.
      const first = vma.pgoffAt(start);
      const last = vma.pgoffAt(end - 1);
      for (let p = first; p <= last; ) {
        const bo = space().boAt(p);
        if (bo === null) break;
        const to = Math.min(last + 1, bo.offset + bo.pages);
        bo.tracker?.preUnmap(p - bo.offset, to - bo.offset);
        p = to;
      }
    },
    pfnMkwrite(vmf) {
      const hit = lookup(vmf);
      if (hit === null) return VM_FAULT_SIGBUS;
      hit[0].tracker?.recordWrite(hit[1]);
      return VM_FAULT_OK;
    },
  };
}
