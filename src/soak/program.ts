import { Prng } from './prng.js';
import { type BoSpec, MAX_LIVE_BOS, type MappingSpec, type World, boSpec } from './world.js';

/**
 * Faults the soak injects through the device's own facilities (device/faults.ts,
 * Device.restart, a second session holding memory). Each is armed at a
 * barrier, when nothing is in flight, so the command or message it hits is
 * decided by the program rather than by socket timing.
 */
export type FaultSpec =
  /** The nth command of the driver's session from now fails ('injected'). */
  | { kind: 'failNth'; n: number }
  /** The driver's connection is cut when its nth message from now arrives. */
  | { kind: 'dropAfter'; n: number }
  /** The next `count` fences of the driver's session signal `ms` late. */
  | { kind: 'delayFences'; ms: number; count: number }
  /** The device stops applying commands until the next barrier. */
  | { kind: 'stall' }
  /** The device stops applying commands of the driver's session for good: the driver's fence timeout must notice. */
  | { kind: 'silence' }
  /** Every session closes with 1012 and the device forgets everything. */
  | { kind: 'restart' }
  /** Another session takes all free device memory but `slackPages` pages, until an 'unhog' step or the calm. */
  | { kind: 'hog'; slackPages: number }
  /** The define of the BO created by the next step is refused. */
  | { kind: 'refuseDefine' }
  /** The first destroy command of the BO destroyed by the next step is refused. */
  | { kind: 'refuseDestroy' }
  /** The connection drops at once and the nth command of the resync (a define) is refused. */
  | { kind: 'refuseResync'; n: number };

export type FaultKind = FaultSpec['kind'];
export const FAULT_KINDS: readonly FaultKind[] = [
  'failNth', 'dropAfter', 'delayFences', 'stall', 'silence', 'restart', 'hog', 'refuseDefine', 'refuseDestroy', 'refuseResync',
];

/**
 * One step of a run. BOs and VMAs are named by handles: the initial BOs are
 * 0..n-1 and their mappings the first VMA handles, in World order; every
 * createBo / mmap step names the handles it creates.
 */
export type Step =
  /** CPU `cpu` writes `length` pseudo-random bytes (from `data`) at byte `offset` of the VMA. */
  | { op: 'write'; vma: number; cpu: number; offset: number; length: number; data: number; mode: 'sync' | 'async' }
  /** driver.flush(); awaited, or left in flight until the next barrier. */
  | { op: 'flush'; wait: boolean }
  /** Let `ticks` microtasks run (an in-flight flush scans and sends) without letting socket events in. */
  | { op: 'yield'; ticks: number }
  /** Quiescence: everything in flight settles, a flush reaches the device, the oracle checks guest memory. */
  | { op: 'barrier' }
  /** The device writes `length` bytes into the BO and announces it. */
  | { op: 'gpuWrite'; bo: number; offset: number; length: number; data: number }
  | { op: 'fault'; fault: FaultSpec }
  | { op: 'unhog' }
  | { op: 'createBo'; bo: number; spec: BoSpec; vmas: number[] }
  | { op: 'destroyBo'; bo: number }
  /** Unmap the whole VMA, or `pages` pages at its head or tail. */
  | { op: 'munmap'; vma: number; part: 'all' | 'head' | 'tail'; pages: number }
  | { op: 'mmap'; vma: number; bo: number; mapping: MappingSpec }
  /** Faults stop: the driver must reach a coherent device copy within a bounded number of flushes. */
  | { op: 'calm' };

export interface Program {
  seed: number;
  steps: Step[];
}

interface LiveBo {
  spec: BoSpec;
  pages: number;
}

interface LiveVma {
  bo: number;
  pages: number;
}

/**
 * The program of a world: segments, each a barrier, then a few barrier
 * actions (device writes, faults, BOs created or destroyed), then free steps
 * (CPU writes, flushes left in flight or awaited, munmap / mmap). A stalled
 * segment has only synchronous writes and unawaited flushes: the device
 * applies nothing until the next barrier releases it.
 */
export interface ProgramOptions {
  /**
   * false: the same workload without its fault steps (the draws are the same,
   * only the faults are left out), to tell workload bugs from recovery bugs.
   */
  faults?: boolean;
}

export function programFor(world: World, opts: ProgramOptions = {}): Program {
  const rng = new Prng(world.seed).fork(); // independent of the world's draws
  const ps = world.machine.pageSize;
  const bos = new Map<number, LiveBo>();
  const vmas = new Map<number, LiveVma>();
  let nextBo = 0;
  let nextVma = 0;
  let liveBytes = 0;
  const addBo = (spec: BoSpec): [number, number[]] => {
    const h = nextBo++;
    const pages = Math.ceil(spec.size / ps);
    bos.set(h, { spec, pages });
    liveBytes += spec.size;
    const handles = spec.mappings.map((m) => {
      vmas.set(nextVma, { bo: h, pages: m.pages });
      return nextVma++;
    });
    return [h, handles];
  };
  for (const spec of world.bos) addBo(spec);

  const steps: Step[] = [];
  let hog = false;
  const segments = rng.int(4, 12);
  for (let seg = 0; seg < segments; seg++) {
    steps.push({ op: 'barrier' });
    if (hog && rng.chance(0.4)) {
      if (opts.faults !== false) steps.push({ op: 'unhog' });
      hog = false;
    }
    let stall: FaultSpec | null = null;
    const destroy = (): void => {
      const bo = rng.pick([...bos.keys()]);
      steps.push({ op: 'destroyBo', bo });
      liveBytes -= bos.get(bo)!.spec.size;
      bos.delete(bo);
      for (const [h, v] of vmas) if (v.bo === bo) vmas.delete(h);
    };
    const actions = rng.int(0, 4);
    for (let a = 0; a < actions; a++) {
      const what = rng.weighted<'gpuWrite' | 'fault' | 'create' | 'destroy'>([
        ['gpuWrite', bos.size > 0 ? 3 : 0],
        ['fault', 4],
        ['create', bos.size < MAX_LIVE_BOS ? 1 : 0],
        ['destroy', bos.size > 1 ? 0.5 : 0],
      ]);
      if (what === 'gpuWrite') {
        const bo = rng.pick([...bos.keys()]);
        const { spec } = bos.get(bo)!;
        const offset = rng.int(0, spec.size - 1);
        steps.push({ op: 'gpuWrite', bo, offset, length: rng.int(1, Math.min(2 * ps, spec.size - offset)), data: rng.u32() });
      } else if (what === 'create' || what === 'fault') {
        let fault = what === 'fault' ? faultSpec(rng, hog) : null;
        if (fault?.kind === 'stall' || fault?.kind === 'silence') {
          stall ??= fault; // armed last: the barrier actions after it would wait on a stalled device
          continue;
        }
        if (fault?.kind === 'refuseDestroy' && bos.size < 2) fault = { kind: 'failNth', n: 1 };
        const create = what === 'create' || fault?.kind === 'refuseDefine';
        const spec = create ? boSpec(rng, ps, world.processes) : null;
        if (spec !== null && liveBytes + spec.size > world.maxLiveBytes) continue;
        if (fault !== null && opts.faults !== false) steps.push({ op: 'fault', fault });
        if (fault?.kind === 'hog') hog = true;
        if (spec !== null) {
          const [h, handles] = addBo(spec);
          steps.push({ op: 'createBo', bo: h, spec, vmas: handles });
        }
        if (fault?.kind === 'refuseDestroy') destroy();
      } else {
        destroy();
      }
    }
    if (stall !== null && opts.faults !== false) steps.push({ op: 'fault', fault: stall });
    // A stalled device answers nothing until the barrier: no awaited flush, no write that waits for a readback.
    const stalled = stall?.kind === 'stall';

    const free = rng.int(2, 20);
    for (let i = 0; i < free; i++) {
      const what = rng.weighted<'write' | 'flush' | 'wait' | 'yield' | 'munmap' | 'mmap'>([
        ['write', vmas.size > 0 ? 10 : 0],
        ['flush', 3],
        ['wait', stall !== null ? 0 : 2],
        ['yield', 1],
        ['munmap', vmas.size > 0 ? 0.4 : 0],
        ['mmap', bos.size > 0 ? 0.4 : 0],
      ]);
      switch (what) {
        case 'write': {
          const h = rng.pick([...vmas.keys()]);
          const bytes = vmas.get(h)!.pages * ps;
          const length = Math.min(bytes, rng.weighted<() => number>([
            [() => rng.int(1, 64), 4],
            [() => rng.int(1, ps), 3],
            [() => rng.int(ps, 3 * ps), 2],
          ])());
          // A third of the writes go to the VMA's first pages: pages rewritten while their upload is in flight.
          const span = rng.chance(0.3) ? Math.min(bytes, 2 * ps) : bytes;
          const offset = rng.int(0, Math.max(0, span - length));
          steps.push({
            op: 'write', vma: h, cpu: rng.int(0, world.machine.cpus - 1), offset, length: Math.min(length, bytes - offset),
            data: rng.u32(), mode: stalled || rng.chance(0.5) ? 'sync' : 'async',
          });
          break;
        }
        case 'flush':
        case 'wait':
          steps.push({ op: 'flush', wait: what === 'wait' });
          break;
        case 'yield':
          steps.push({ op: 'yield', ticks: rng.int(1, 16) });
          break;
        case 'munmap': {
          const h = rng.pick([...vmas.keys()]);
          const v = vmas.get(h)!;
          const part = v.pages === 1 ? 'all' : rng.pick(['all', 'head', 'tail'] as const);
          const pages = part === 'all' ? v.pages : rng.int(1, v.pages - 1);
          steps.push({ op: 'munmap', vma: h, part, pages });
          if (part === 'all') vmas.delete(h);
          else v.pages -= pages;
          break;
        }
        case 'mmap': {
          const bo = rng.pick([...bos.keys()]);
          const pages = bos.get(bo)!.pages;
          const pgoff = rng.chance(0.5) ? 0 : rng.int(0, pages - 1);
          const mapping: MappingSpec = { mm: rng.int(0, world.processes - 1), pgoff, pages: rng.int(1, pages - pgoff), randRead: rng.chance(0.15) };
          vmas.set(nextVma, { bo, pages: mapping.pages });
          steps.push({ op: 'mmap', vma: nextVma++, bo, mapping });
          break;
        }
      }
    }
  }
  steps.push({ op: 'calm' });
  return { seed: world.seed, steps };
}

function faultSpec(rng: Prng, hogHeld: boolean): FaultSpec {
  const kind = rng.weighted<FaultKind>([
    ['failNth', 3], ['dropAfter', 2], ['delayFences', 2], ['stall', 1], ['silence', 0.5], ['restart', 1],
    ['hog', hogHeld ? 0 : 1], ['refuseDefine', 1], ['refuseDestroy', 0.5], ['refuseResync', 1],
  ]);
  switch (kind) {
    case 'failNth':
      return { kind, n: rng.int(1, 10) };
    case 'dropAfter':
      return { kind, n: rng.int(1, 30) };
    case 'delayFences':
      return { kind, ms: rng.int(1, 20), count: rng.int(1, 8) };
    case 'hog':
      return { kind, slackPages: rng.int(0, 16) };
    case 'refuseResync':
      return { kind, n: rng.int(1, 4) };
    default:
      return { kind };
  }
}

/** One line per step, for traces and failure reports. */
export function formatStep(s: Step): string {
  switch (s.op) {
    case 'write':
      return `write vma ${s.vma} +${s.offset} len ${s.length} cpu ${s.cpu} ${s.mode}`;
    case 'flush':
      return s.wait ? 'flush (awaited)' : 'flush (in flight)';
    case 'yield':
      return `yield ${s.ticks} microtask(s)`;
    case 'gpuWrite':
      return `gpuWrite bo ${s.bo} +${s.offset} len ${s.length}`;
    case 'fault':
      return `fault ${Object.entries(s.fault).map(([k, v]) => (k === 'kind' ? v : `${k}=${v}`)).join(' ')}`;
    case 'createBo':
      return `createBo ${s.bo} (${s.spec.size} bytes, ${s.spec.resources.length} resource(s), vmas ${s.vmas.join(',') || 'none'})`;
    case 'destroyBo':
      return `destroyBo ${s.bo}`;
    case 'munmap':
      return `munmap vma ${s.vma} ${s.part}${s.part === 'all' ? '' : ` ${s.pages} page(s)`}`;
    case 'mmap':
      return `mmap vma ${s.vma} = bo ${s.bo} pages [${s.mapping.pgoff}, ${s.mapping.pgoff + s.mapping.pages}) in process ${s.mapping.mm}`;
    default:
      return s.op;
  }
}
