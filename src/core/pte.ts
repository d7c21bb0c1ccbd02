/**
 * Page-table entry encoding. A PTE is one int32 in a typed array:
 *
 *   bits 0..7  flags (below)
 *   bits 8..30 page-frame number (so `pfn < 2^23`)
 *
 * Keeping the whole entry in a small integer lets V8 store tables as untagged
 * int32 arrays and keeps every test a single AND.
 */
export const PTE_PRESENT = 1 << 0;
export const PTE_WRITE = 1 << 1;
/** Hardware-set dirty bit (x86 "D"). */
export const PTE_DIRTY = 1 << 2;
/** Accessed bit (x86 "A"). */
export const PTE_YOUNG = 1 << 3;
/** Soft-dirty: set by a write fault, cleared by clear_refs (soft-dirty.ts); hardware D-bit updates never set it. */
export const PTE_SOFT_DIRTY = 1 << 4;
/** uffd-wp: the page is write-protected for userfaultfd (never together with PTE_WRITE); a write fault clears it in async mode (uffd-wp.ts). */
export const PTE_UFFD_WP = 1 << 5;
/** PFN map entry with no struct page (what TTM inserts). */
export const PTE_SPECIAL = 1 << 6;
/** Leaf entry at PMD or PUD level mapping a whole huge page. */
export const PTE_HUGE = 1 << 7;

export const PTE_FLAG_MASK = 0xff;
export const PFN_SHIFT = 8;
/** Largest frame number a PTE can hold. */
export const MAX_PFN = (1 << 23) - 1;

/** An empty slot ("pte_none"). */
export const PTE_NONE = 0;

/**
 * A uffd-wp marker (PTE_MARKER_UFFD_WP): a non-present entry that keeps a
 * page write-protected for userfaultfd while it is not mapped. The only
 * non-present, non-none entry the simulator has.
 */
export const PTE_UFFD_MARKER = PTE_UFFD_WP;

export function mkPte(pfn: number, flags: number): number {
  return (pfn << PFN_SHIFT) | (flags & PTE_FLAG_MASK);
}

export function ptePfn(pte: number): number {
  return pte >>> PFN_SHIFT;
}

export function pteFlags(pte: number): number {
  return pte & PTE_FLAG_MASK;
}

/** Human-readable flags, e.g. "P W D A", for traces and counterexamples. */
export function describePte(pte: number): string {
  if (pte === PTE_NONE) return 'none';
  if (pte === PTE_UFFD_MARKER) return 'uffd-wp marker';
  const parts: string[] = [`pfn=${ptePfn(pte)}`];
  if (pte & PTE_PRESENT) parts.push('P');
  if (pte & PTE_WRITE) parts.push('W');
  if (pte & PTE_DIRTY) parts.push('D');
  if (pte & PTE_YOUNG) parts.push('A');
  if (pte & PTE_SOFT_DIRTY) parts.push('SD');
  if (pte & PTE_UFFD_WP) parts.push('UW');
  if (pte & PTE_SPECIAL) parts.push('S');
  if (pte & PTE_HUGE) parts.push('H');
  return parts.join(' ');
}
