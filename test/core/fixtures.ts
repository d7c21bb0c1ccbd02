import {
  type Machine, type Mapping, type Mm, type Vma,
  PTE_DIRTY, PTE_PRESENT, PTE_WRITE, VM_MAYWRITE, VM_SHARED,
} from '../../src/index.js';

/** Everything observable about a machine's memory-management state, as plain data. */
export function snapshotMachine(machine: Machine): string {
  const mms = machine.mms.map((mm) => ({
    id: mm.id,
    vmas: mm.vmas.map((v) => [v.start, v.end, v.pgoff, v.flags]),
    ptes: allPtes(mm),
    pending: mm.tlbFlushPending,
  }));
  const tlbs = machine.cpus.map((c) => [...c.tlb.entries()].map((e) => [e.mmId, e.vpn, e.pte]));
  // Access statistics (TLB hits/misses) are observations, not state: a faulting
  // access did miss in the TLB. Everything that changes behaviour is compared.
  const counters = [machine.counters, machine.cpus.map((c) => [c.counters.faults, c.counters.dirtyBitSets, c.counters.ipis, c.counters.tlbEntriesDropped])];
  return JSON.stringify({ mms, tlbs, counters, frames: machine.phys.framesInUse });
}

/** [vpn, pte] of every populated PTE slot of mm. */
export function allPtes(mm: Mm): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const v of mm.vmas) {
    for (let vpn = v.start / mm.pageSize; vpn < v.end / mm.pageSize; vpn++) {
      const pte = mm.readPte(vpn);
      if (pte !== 0) out.push([vpn, pte]);
    }
  }
  return out;
}

export function isTracked(v: Vma): boolean {
  return (v.flags & (VM_SHARED | VM_MAYWRITE)) === (VM_SHARED | VM_MAYWRITE);
}

export function pteAt(vma: Vma, pgoff: number): number {
  return vma.mm.readPte(vma.addressOf(pgoff) / vma.mm.pageSize);
}

/** Pgoffs in [first, first + nr) with a dirty PTE in some shared writable VMA. */
export function dirtyPgoffs(mapping: Mapping, first = 0, nr = mapping.nrPages): Set<number> {
  const out = new Set<number>();
  for (const v of mapping.allVmas()) {
    if (!isTracked(v)) continue;
    for (let p = Math.max(first, v.pgoff); p < Math.min(first + nr, v.pgoffEnd); p++) {
      if (pteAt(v, p) & PTE_DIRTY) out.add(p);
    }
  }
  return out;
}

/**
 * Writable TLB entries whose PTE is read-only or gone, for pgoffs in
 * [first, first + nr) of mapping: what must not survive a wp call.
 */
export function staleWritableEntries(machine: Machine, mapping: Mapping, first: number, nr: number): string[] {
  const out: string[] = [];
  for (const v of mapping.allVmas()) {
    for (let p = Math.max(first, v.pgoff); p < Math.min(first + nr, v.pgoffEnd); p++) {
      const vpn = v.addressOf(p) / v.mm.pageSize;
      const pte = v.mm.readPte(vpn);
      if ((pte & (PTE_PRESENT | PTE_WRITE)) === (PTE_PRESENT | PTE_WRITE)) continue;
      for (const cpu of machine.cpus) {
        const e = cpu.tlb.peek(v.mm.id, vpn);
        if (e !== null && e & PTE_WRITE) out.push(`cpu${cpu.id} mm${v.mm.id} pgoff ${p}`);
      }
    }
  }
  return out;
}

/** Seed for property tests: VGPU_SEED from the environment, else a fixed default (tests stay deterministic). */
export function propertySeed(fallback: number): number {
  const env = process.env['VGPU_SEED'];
  return env === undefined ? fallback : Number(env);
}
