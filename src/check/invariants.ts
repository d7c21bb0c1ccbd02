/**
 * The properties the explorer checks, each a pure function of the world and
 * the bookkeeping the execution keeps (bitmasks of pgoffs, bit p = pgoff p).
 *
 *  guarantee-a  every PTE dirty when a clean-record call starts is recorded by it;
 *  guarantee-b  every page written while the call ran is recorded by it, or
 *               still has a dirty PTE when it returns, or both (the helper's
 *               documented contract). For a tracker's scan-and-protect the
 *               same two, with "marked written" for "dirty": the soft-dirty
 *               bit, or the uffd-wp bit clear;
 *  stale-writable-tlb  when a wp call returns, no CPU holds a writable TLB
 *               entry for a PTE in its range that is not writable (callers rely
 *               on "after wp returns, every writer faults");
 *  lost-write   after a quiescent final sync (flush caches, then the same
 *               helper and the consumer copying what it recorded, or one more
 *               validation of every resource) the device copy holds the last
 *               value written to every byte;
 *  uffd-wp-writable  no PTE is writable with its uffd-wp bit set.
 * Pages are BO pages (with a driver, pgoff = BO offset + page).
 */
import { PTE_PRESENT, PTE_UFFD_WP, PTE_WRITE } from '../core/pte.js';
import type { InvariantName } from './scenario.js';
import { PAGE_SIZE, type World } from './world.js';

export { INVARIANT_NAMES, type InvariantName } from './scenario.js';

export interface Violation {
  readonly invariant: InvariantName;
  readonly pgoff: number;
  readonly message: string;
}

const lowestBit = (mask: number): number => 31 - Math.clz32(mask & -mask);
const hex = (v: number): string => `0x${v.toString(16).padStart(2, '0')}`;
/** "{0,2}" for a page mask. */
export function pageList(mask: number): string {
  const out: number[] = [];
  for (let p = 0; mask >>> p !== 0; p++) if (mask & (1 << p)) out.push(p);
  return `{${out.join(',')}}`;
}

/**
 * At the return of a recording call (clean-record, or a tracker's
 * scan-and-protect). Page masks: `markedAtStart` (dirty / marked written
 * when it started), `written` (written while it ran), `recorded` (what it
 * reported), `markedNow` (marked at its return); `marked` names the mark.
 */
export function checkRecordingReturn(
  call: string, marked: string, markedAtStart: number, written: number, recorded: number, markedNow: number,
  checked: (name: InvariantName) => boolean,
): Violation | null {
  const missedA = markedAtStart & ~recorded;
  if (missedA !== 0 && checked('guarantee-a')) {
    const p = lowestBit(missedA);
    return { invariant: 'guarantee-a', pgoff: p, message: `pgoff ${p} ${marked === 'dirty' ? 'had a dirty PTE' : `was marked ${marked}`} when ${call} started but is not recorded (recorded ${pageList(recorded)})` };
  }
  const missedB = written & ~recorded & ~markedNow;
  if (missedB !== 0 && checked('guarantee-b')) {
    const p = lowestBit(missedB);
    return { invariant: 'guarantee-b', pgoff: p, message: `pgoff ${p} was written during ${call} but is neither recorded nor ${marked} at its return` };
  }
  return null;
}

/** Anywhere: a PTE writable with its uffd-wp bit set (a write fault userfaultfd did not handle found a protected PTE; the kernel WARNs). */
export function checkUffdWpWritable(world: World): Violation | null {
  for (const v of world.views) {
    for (let p = v.first; p < v.first + v.pages; p++) {
      const pte = world.pte(v, p);
      if ((pte & (PTE_PRESENT | PTE_WRITE | PTE_UFFD_WP)) === (PTE_PRESENT | PTE_WRITE | PTE_UFFD_WP)) {
        return { invariant: 'uffd-wp-writable', pgoff: p, message: `pgoff ${p} has a writable PTE with its uffd-wp bit set` };
      }
    }
  }
  return null;
}

/** At a wp call's return: writable TLB entries whose PTE is no longer present and writable. */
export function checkWpReturn(world: World, first: number, nr: number): Violation | null {
  for (const v of world.views) {
    for (let p = Math.max(first, v.first); p < Math.min(first + nr, v.first + v.pages); p++) {
      const vpn = world.vpnOf(v, p);
      const pte = v.mm.readPte(vpn);
      if ((pte & (PTE_PRESENT | PTE_WRITE)) === (PTE_PRESENT | PTE_WRITE)) continue;
      for (const cpu of world.machine.cpus) {
        const e = cpu.tlb.peek(v.mm.id, vpn);
        if (e !== null && e & PTE_WRITE) {
          return { invariant: 'stale-writable-tlb', pgoff: p, message: `wp [${first},${first + nr}) returned while cpu${cpu.id} still holds a writable TLB entry for read-only pgoff ${p}` };
        }
      }
    }
  }
  return null;
}

/** After the final sync: the device copy against the oracle, over the bytes CPUs write. */
export function checkDeviceCopy(world: World): Violation | null {
  const cpus = world.machine.cpus.length;
  for (let p = 0; p < world.pages; p++) {
    for (let o = 0; o < cpus; o++) {
      const i = p * PAGE_SIZE + o;
      if (world.device[i] !== world.oracle[i]) {
        return {
          invariant: 'lost-write', pgoff: p,
          message: `pgoff ${p} byte ${o}: the device copy has ${hex(world.device[i]!)} but cpu${o} last wrote ${hex(world.oracle[i]!)}`,
        };
      }
    }
  }
  return null;
}
