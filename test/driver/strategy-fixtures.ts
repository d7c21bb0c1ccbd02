import {
  Bitmap, BoSpace, DEFAULT_DIRTY_CONFIG, type DirtyStrategy, type Mm, type TrackerEnv, Machine, boVmOps, checkTracker, strategyMachineOptions,
} from '../../src/index.js';

export const PS = 4096;

/**
 * A BO space with the driver's vm_ops, the memory kind and machine a
 * strategy asks for, and no device: what the driver does when it creates and
 * maps a BO, with nothing else.
 */
export function strategySpace(strategy: DirtyStrategy) {
  const machine = new Machine({ cpus: 2, memoryBytes: 32 << 20, ...strategyMachineOptions(strategy) });
  const config = { ...DEFAULT_DIRTY_CONFIG };
  let space: BoSpace | null = null;
  const ops = boVmOps(() => space!, config, { readback: () => Promise.reject(new Error('offline: no readback')) });
  space = new BoSpace(machine, machine.createMapping(machine.phys.nrFrames / 2, { ops, populate: false, kind: strategy.backing ?? 'device' }));
  const shared = new Map<string, unknown>();
  const env: TrackerEnv = {
    config,
    shared: <T>(key: string, make: () => T) => (shared.has(key) ? shared.get(key) : shared.set(key, make()).get(key)) as T,
  };
  const cpu = machine.cpus[0]!;
  const s = space;
  return {
    machine, space: s, cpu,
    bo(pages: number) {
      const bo = s.create(pages * PS);
      bo.tracker = checkTracker(strategy.createTracker(bo, env), strategy);
      const t = bo.tracker;
      return {
        bo, t,
        /** Map the whole BO into mm as Driver.mmap does (the tracker is told). */
        map(mm: Mm) {
          const vma = mm.mmap(s.mapping, { pgoff: bo.offset, pages });
          t.mapped?.(vma);
          return vma;
        },
        /** Scan, then take every recorded page: the pages the next upload would carry. */
        harvest(): number[] {
          t.scan();
          const out: number[] = [];
          t.takeDirty(0, pages, (a, b) => {
            for (let p = a; p < b; p++) out.push(p);
          });
          return out;
        },
        peek(): number[] {
          const b = new Bitmap(pages);
          t.peekDirty(b);
          return b.toArray();
        },
      };
    },
  };
}
