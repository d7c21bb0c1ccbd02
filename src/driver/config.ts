/**
 * Tunables of the vmwgfx-style dirty tracking (kernel-semantics §3.2), with
 * the kernel's values as defaults.
 */
export interface DirtyConfig {
  /** Pages mapped per fault (TTM_BO_VM_NUM_PREFAULT); 1 for VM_RAND_READ VMAs. */
  prefault: number;
  /** BOs of at least this many pages start in MKWRITE (PAGE_SIZE / sizeof(pte_t)). */
  mkwriteThresholdPages: number;
  /** A method switch needs more than this many consecutive votes (VMW_DIRTY_NUM_CHANGE_TRIGGERS). */
  changeTriggers: number;
  /** MKWRITE → PAGETABLE votes when more than this percentage of pages was written (VMW_DIRTY_PERCENTAGE). */
  switchPercentage: number;
}

export const DEFAULT_DIRTY_CONFIG: Readonly<DirtyConfig> = {
  prefault: 16,
  mkwriteThresholdPages: 512,
  changeTriggers: 2,
  switchPercentage: 10,
};
