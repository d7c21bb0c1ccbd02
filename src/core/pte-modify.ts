import type { Mm } from './mm.js';
import { KERNEL_ACTOR, Step } from './step.js';

/**
 * ptep_modify_prot_start + ptep_modify_prot_commit for one present PTE, with
 * the table's lock held by the caller: read-and-clear the entry, offer the
 * PteCleared step (the slot is non-present, so a CPU that walks to it faults
 * and waits for the lock), then store the old value with `set` added and
 * `clear` removed and offer PteCommitted. The new value is built from what was
 * read-and-cleared, so an A/D bit set since the caller's snapshot survives
 * (the lost-bits bug, B3 in docs/fidelity.md). TLB flushing is the caller's.
 */
export function modifyPteProt(mm: Mm, table: Int32Array, index: number, vpn: number, set: number, clear: number): void {
  const old = table[index]!;
  table[index] = 0;
  const machine = mm.machine;
  machine.step(Step.PteCleared, KERNEL_ACTOR, mm, vpn);
  table[index] = (old | set) & ~clear;
  machine.step(Step.PteCommitted, KERNEL_ACTOR, mm, vpn);
}
