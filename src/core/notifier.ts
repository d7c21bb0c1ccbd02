import type { Mm } from './mm.js';

/** Why a range is being invalidated (a subset of the kernel's mmu_notifier_event). */
export type NotifierEvent = 'unmap' | 'protection-vma' | 'protection-page' | 'clear';

export interface NotifierRange {
  readonly mm: Mm;
  readonly start: number;
  readonly end: number;
  readonly event: NotifierEvent;
}

/**
 * An mmu-notifier subscription: secondary MMUs (a device's own page tables,
 * KVM) drop their copies between start and end of every change to the PTEs of
 * [start, end). Every PTE change the core makes is bracketed by such a pair.
 */
export interface MmuNotifier {
  invalidateRangeStart?(range: NotifierRange): void;
  invalidateRangeEnd?(range: NotifierRange): void;
}
