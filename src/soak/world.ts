import type { Limits } from '../../protocol/index.js';
import { DEFAULT_DIRTY_CONFIG, type DirtyConfig } from '../driver/config.js';
import { ENCODINGS, type Encoding } from '../driver/encoding.js';
import type { BuiltinStrategyName } from '../driver/strategies/builtin.js';
import { Prng } from './prng.js';

/**
 * Everything about one soak run that is not its program: the simulated machine,
 * the device's limits, the driver's tuning, and the buffer objects that exist
 * from the start. All of it is drawn from the run's seed (worldFor), so a seed
 * names one world exactly.
 */
export interface World {
  seed: number;
  machine: {
    cpus: number;
    /** vivt is left out: its per-CPU caches are not coherent with each other, so two CPUs writing one page lose bytes by design (docs/fidelity.md). */
    arch: 'x86' | 'sw-dirty';
    pageSize: number;
    tlbEntries: number;
    memoryBytes: number;
  };
  /** Processes (Mm) the BOs are mapped into. */
  processes: number;
  /** How the driver tracks its BOs; `dirty` tunes the vmwgfx tracker (adaptive, pagetable, mkwrite). */
  strategy: BuiltinStrategyName;
  dirty: DirtyConfig;
  writeback: { maxBatchBytes: number; windowBatches: number; encoding: Encoding };
  reconnect: { backoffInitialMs: number; backoffMaxMs: number };
  /** The driver's fence/reply timeout: a device silent for longer is dropped and reconnected. */
  fenceTimeoutMs: number;
  device: { limits: Limits; fenceLatency: number };
  /** Bytes of BOs alive at once the program never exceeds (the machine and the device are sized from it; a tight device has exactly this much). */
  maxLiveBytes: number;
  bos: BoSpec[];
}

export interface BoSpec {
  size: number;
  resources: ResourceSpec[];
  mappings: MappingSpec[];
}

export type ResourceSpec =
  | { kind: 'buffer'; offset: number; size: number }
  | { kind: 'surface'; offset: number; width: number; height: number; depth: number; bytesPerPixel: number; rowPitch: number; imagePitch: number };

/** A VMA: BO pages [pgoff, pgoff + pages) mapped into process `mm`. */
export interface MappingSpec {
  mm: number;
  pgoff: number;
  pages: number;
  randRead: boolean;
}

const KIB = 1024;
/** Largest number of BOs alive at once. */
export const MAX_LIVE_BOS = 8;

/** The world of seed `seed`. */
export function worldFor(seed: number): World {
  const rng = new Prng(seed);
  // Mostly 4 KiB pages; some worlds use 1 KiB pages (the device is told the same size).
  const pageSize = rng.chance(0.15) ? 1024 : 4096;
  const processes = rng.int(1, 3);
  const bos: BoSpec[] = [];
  const initial = rng.int(1, 4);
  for (let i = 0; i < initial; i++) bos.push(boSpec(rng, pageSize, processes));
  const initialBytes = bos.reduce((s, b) => s + b.size, 0);
  // Tight: the initial BOs fit with a little room, and the program stays within it: only a
  // fault (the hog, a leaked device object) makes a define run out of room.
  const tight = rng.chance(0.35);
  const maxLiveBytes = tight ? initialBytes + rng.int(0, 48) * pageSize : Math.max(4 << 20, 2 * initialBytes);
  const limits: Limits = {
    maxBos: 4096,
    maxBoSize: 256 << 20,
    maxTotalBytes: tight ? maxLiveBytes : 2 * maxLiveBytes,
    maxSurfaces: 4096,
    maxMessageSize: rng.pick([128 * KIB, 1024 * KIB, 16384 * KIB]),
    maxRanges: rng.pick([4, 16, 64, 16384]),
  };
  return {
    seed,
    machine: {
      cpus: rng.int(2, 4),
      arch: rng.chance(0.7) ? 'x86' : 'sw-dirty',
      pageSize,
      tlbEntries: rng.pick([16, 64]),
      // Frames for every BO page alive at once, with room for the last partial pages.
      memoryBytes: maxLiveBytes + 16 * pageSize * MAX_LIVE_BOS,
    },
    processes,
    strategy: strategyFor(seed),
    dirty: {
      ...DEFAULT_DIRTY_CONFIG,
      prefault: rng.pick([1, 4, 16]),
      mkwriteThresholdPages: rng.pick([4, 16, 64, 512]),
      changeTriggers: rng.int(0, 3),
      switchPercentage: rng.pick([0, 10, 50]),
    },
    // The encoding follows the seed without a draw of its own, so every other choice of a seed stays.
    writeback: { maxBatchBytes: rng.pick([64 * KIB, 128 * KIB, 256 * KIB, 1024 * KIB]), windowBatches: rng.int(1, 6), encoding: ENCODINGS[seed % ENCODINGS.length]! },
    reconnect: { backoffInitialMs: rng.int(1, 10), backoffMaxMs: rng.int(20, 100) },
    fenceTimeoutMs: rng.int(100, 250),
    device: { limits, fenceLatency: rng.chance(0.2) ? rng.int(1, 3) : 0 },
    maxLiveBytes,
    bos,
  };
}

/**
 * Every built-in strategy is soaked; adaptive, whose method switches are the
 * intricate part, twice as often. Like the encoding, the strategy follows the
 * seed without a draw of its own (7 is prime to the 5 encodings, so seeds
 * 0..34 run every pair), so adding it changed no other choice of any seed.
 */
const SOAKED_STRATEGIES: readonly BuiltinStrategyName[] = ['adaptive', 'pagetable', 'adaptive', 'mkwrite', 'soft-dirty', 'uffd-wp', 'full'];

export function strategyFor(seed: number): BuiltinStrategyName {
  return SOAKED_STRATEGIES[Math.floor(seed / ENCODINGS.length) % SOAKED_STRATEGIES.length]!;
}

/**
 * A BO with its resources and mappings. Resources start on page boundaries
 * and never share a page; some bytes (gaps, pitch padding, a tail) belong to
 * no resource and are therefore never uploaded.
 */
export function boSpec(rng: Prng, pageSize: number, processes: number): BoSpec {
  const pages = rng.weighted<() => number>([
    [() => rng.int(1, 8), 4],
    [() => rng.int(9, 64), 5],
    [() => rng.int(65, 600), 1],
  ])();
  const size = rng.chance(0.25) ? pages * pageSize - rng.int(1, pageSize - 1) : pages * pageSize;
  const resources: ResourceSpec[] = [];
  let page = 0;
  while (page < pages) {
    const chunk = Math.min(pages - page, rng.int(1, Math.max(1, Math.ceil(pages / 2))));
    const offset = page * pageSize;
    const room = Math.min(size, (page + chunk) * pageSize) - offset;
    const kind = rng.weighted<'buffer' | 'surface' | 'gap'>([['buffer', 5], ['surface', 3], ['gap', 1]]);
    if (kind === 'buffer') {
      resources.push({ kind, offset, size: rng.chance(0.8) ? room : rng.int(1, room) });
    } else if (kind === 'surface') {
      resources.push(surfaceSpec(rng, offset, room));
    }
    page += chunk;
  }
  const mappings: MappingSpec[] = [];
  const n = rng.int(1, 3);
  for (let i = 0; i < n; i++) {
    const whole = i === 0 || rng.chance(0.5);
    const pgoff = whole ? 0 : rng.int(0, pages - 1);
    mappings.push({ mm: rng.int(0, processes - 1), pgoff, pages: whole ? pages : rng.int(1, pages - pgoff), randRead: rng.chance(0.15) });
  }
  return { size, resources, mappings };
}

/** A 2D or 3D surface of at most `room` bytes at `offset`, sometimes with row or slice padding. */
function surfaceSpec(rng: Prng, offset: number, room: number): ResourceSpec {
  const bytesPerPixel = rng.pick([1, 2, 3, 4, 8]);
  const depth = rng.chance(0.2) ? rng.int(2, 3) : 1;
  const maxRow = Math.max(1, Math.floor(room / depth));
  let width = Math.max(1, Math.min(rng.int(1, 512), Math.floor(maxRow / bytesPerPixel)));
  if (width * bytesPerPixel > room) width = Math.max(1, Math.floor(room / bytesPerPixel));
  const rowPitch = width * bytesPerPixel + (rng.chance(0.4) ? rng.int(1, 64) : 0);
  const sliceRoom = Math.floor(room / depth);
  const height = Math.max(1, Math.min(rng.int(1, 256), Math.floor((sliceRoom - width * bytesPerPixel) / rowPitch) + 1));
  const imagePitch = rowPitch * height + (depth > 1 && rng.chance(0.5) ? rng.int(1, 128) : 0);
  const spec = { kind: 'surface' as const, offset, width, height, depth, bytesPerPixel, rowPitch, imagePitch };
  // Shrink until it fits (rare: only with tiny rooms); a 1x1x1 surface always does.
  while (surfaceBytes(spec) > room) {
    if (spec.depth > 1) spec.depth--;
    else if (spec.height > 1) spec.height--;
    else {
      spec.width = Math.max(1, Math.floor(room / spec.bytesPerPixel));
      if (spec.width * spec.bytesPerPixel > room) {
        spec.bytesPerPixel = 1;
        spec.width = room;
      }
      spec.rowPitch = spec.width * spec.bytesPerPixel;
      spec.imagePitch = spec.rowPitch;
    }
  }
  return spec;
}

/** Bytes from a surface's first byte to one past its last. */
export function surfaceBytes(s: { width: number; height: number; depth: number; bytesPerPixel: number; rowPitch: number; imagePitch: number }): number {
  return (s.depth - 1) * s.imagePitch + (s.height - 1) * s.rowPitch + s.width * s.bytesPerPixel;
}

/** Byte ranges [start, end) of the BO that some resource covers (only these are ever uploaded). */
export function coveredRanges(spec: BoSpec): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const r of spec.resources) {
    if (r.kind === 'buffer') {
      out.push([r.offset, r.offset + r.size]);
      continue;
    }
    const row = r.width * r.bytesPerPixel;
    for (let z = 0; z < r.depth; z++) {
      for (let y = 0; y < r.height; y++) {
        const s = r.offset + z * r.imagePitch + y * r.rowPitch;
        out.push([s, s + row]);
      }
    }
  }
  return out;
}
