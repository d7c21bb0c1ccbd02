/**
 * Tunables of the vmwgfx-style dirty tracking, with
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
  /**
   * The fault and mkwrite handlers take the BO's reservation, which scans hold
   * (default true, as the kernel). false: they ignore it, and a write during a
   * method switch can be lost (docs/architecture.md, the reservation).
   */
  handlersTakeReservation: boolean;
  /**
   * mkwrite makes the PTE writable itself, still holding the reservation, and
   * returns VM_FAULT_NOPAGE (default true). false is vmwgfx's order: the bit is
   * set under the reservation, which is released before core mm makes the PTE
   * writable, so a scan in between transfers the bit and the page then takes
   * writes no scan will see (docs/architecture.md, the mkwrite window).
   */
  mkwriteFinishesUnderReservation: boolean;
  /**
   * Transfer to a resource walks up to max(resource end, dirty end), as every
   * shipped vmwgfx did (bug C1 in docs/fidelity.md), instead of min (default false): it clears a
   * neighbouring resource's bits and reports ranges outside the resource.
   */
  transferClampsWithMax: boolean;
}

export const DEFAULT_DIRTY_CONFIG: Readonly<DirtyConfig> = {
  prefault: 16,
  mkwriteThresholdPages: 512,
  changeTriggers: 2,
  switchPercentage: 10,
  handlersTakeReservation: true,
  mkwriteFinishesUnderReservation: true,
  transferClampsWithMax: false,
};
