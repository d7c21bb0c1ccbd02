import { SimWpMemory, VgpuError, type WpMemory } from '../core/index.js';
import { formatOp, formatProgram, generateProgram, type Op, type Program, programSeed, type RangeOpName } from './program.js';

/**
 * Run programs on the simulator and on the real kernel and compare every
 * outcome: each scan's regions (start, end, categories) and walk_end, each
 * call's errno, and at the end the bytes of every mapped page. A mismatch
 * is shrunk to the shortest program that still shows one.
 */

/** Opens a fresh real-kernel region of `pages` pages starting `pmdOffset` pages into a page-table page. */
export type RealFactory = (pages: number, pmdOffset: number) => Promise<WpMemory>;

const RANGE_OPS: Record<RangeOpName, (m: WpMemory, page: number, n: number) => void> = {
  register: (m, page, n) => m.register(page, n),
  unregister: (m, page, n) => m.unregister(page, n),
  protect: (m, page, n) => m.writeProtect(page, n, true),
  unprotect: (m, page, n) => m.writeProtect(page, n, false),
  dontneed: (m, page, n) => m.dontneed(page, n),
  punch: (m, page, n) => m.punchHole(page, n),
  unmap: (m, page, n) => m.unmap(page, n),
  remap: (m, page, n) => m.remap(page, n),
};

/** What one operation did, as a comparable string. */
export function runOp(m: WpMemory, op: Op): string {
  try {
    switch (op.op) {
      case 'write':
        m.write(op.offset, new Uint8Array(op.len).fill(op.byte));
        return 'ok';
      case 'scan': {
        const r = m.scan({
          start: op.start, end: op.end, flags: op.flags, vecLen: op.vecLen, maxPages: op.maxPages,
          categoryInverted: op.inverted, categoryMask: op.mask, categoryAnyofMask: op.anyof, returnMask: op.ret,
        });
        return `${r.regions.map((g) => `[${g.start},${g.end})${g.categories.toString(16)}`).join(' ') || 'none'} walk_end=${r.walkEnd}`;
      }
      default:
        RANGE_OPS[op.op](m, op.page, op.n);
        return 'ok';
    }
  } catch (e) {
    if (e instanceof VgpuError) return e.code;
    throw e;
  }
}

/** FNV-1a of every mapped page's bytes, page by page; unmapped pages count as '-'. */
export function memoryDigest(m: WpMemory): string {
  const parts: string[] = [];
  for (let p = 0; p < m.pages; p++) {
    if (!m.isMapped(p)) {
      parts.push('-');
      continue;
    }
    const b = m.read(p * m.pageSize, m.pageSize);
    let h = 0x811c9dc5;
    for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
    parts.push((h >>> 0).toString(16));
  }
  return parts.join(',');
}

export interface Divergence {
  /** Index of the first operation whose outcome differs, or ops.length for the final memory contents. */
  index: number;
  simulated: string;
  linux: string;
}

/** Attempts at a program whose real run was disturbed by an unrelated mapping in the region. */
const INTERFERENCE_RETRIES = 5;

/**
 * Run one program on both; the first divergence, or null when every outcome
 * agreed. A divergence seen while an unrelated mapping of this process sat
 * inside the region (placed into a range the program unmapped) says nothing
 * about the tracker: the program runs again, and if that keeps happening the
 * divergence is reported with the mapping named.
 */
export async function compareProgram(p: Program, real: RealFactory): Promise<Divergence | null> {
  let d: Divergence | null = null;
  for (let attempt = 0; attempt < INTERFERENCE_RETRIES; attempt++) {
    const r = await compareOnce(p, real);
    if (r.divergence === null || r.foreign.length === 0) return r.divergence;
    d = { ...r.divergence, linux: `${r.divergence.linux} (with an unrelated mapping in the region: ${r.foreign.join('; ')})` };
  }
  return d;
}

async function compareOnce(p: Program, real: RealFactory): Promise<{ divergence: Divergence | null; foreign: string[] }> {
  const linux = await real(p.pages, p.pmdOffset);
  const result = (divergence: Divergence | null) => ({ divergence, foreign: divergence === null ? [] : (linux.foreignMappings?.() ?? []) });
  let sim: SimWpMemory | null = null;
  try {
    sim = new SimWpMemory({ pages: p.pages, pmdOffset: linux.pmdOffset });
    for (let i = 0; i < p.ops.length; i++) {
      const a = runOp(sim, p.ops[i]!);
      const b = runOp(linux, p.ops[i]!);
      if (a !== b) return result({ index: i, simulated: a, linux: b });
    }
    const a = memoryDigest(sim);
    const b = memoryDigest(linux);
    return result(a === b ? null : { index: p.ops.length, simulated: 'memory differs', linux: 'memory differs' });
  } finally {
    sim?.close();
    linux.close();
  }
}

/**
 * The shortest program (by deleting operations, largest chunks first, then
 * one by one until no single deletion keeps the divergence) that still
 * diverges, with its divergence.
 */
export async function shrinkProgram(p: Program, real: RealFactory): Promise<{ program: Program; divergence: Divergence }> {
  let best = p;
  let div = await compareProgram(p, real);
  if (div === null) throw new Error(`program seed=${p.seed} does not diverge`);
  // Everything after the divergence is irrelevant.
  best = { ...best, ops: best.ops.slice(0, div.index + 1) };
  for (let chunk = Math.max(1, best.ops.length >> 1); chunk >= 1; chunk = chunk === 1 ? 0 : Math.max(1, chunk >> 1)) {
    let progress = true;
    while (progress) {
      progress = false;
      for (let at = 0; at + chunk <= best.ops.length; ) {
        const candidate: Program = { ...best, ops: [...best.ops.slice(0, at), ...best.ops.slice(at + chunk)] };
        const d = candidate.ops.length > 0 ? await compareProgram(candidate, real) : null;
        if (d !== null) {
          best = { ...candidate, ops: candidate.ops.slice(0, d.index + 1) };
          div = d;
          progress = true;
        } else {
          at += chunk;
        }
      }
    }
  }
  return { program: best, divergence: div! };
}

export interface DifftestOptions {
  programs: number;
  seed: number;
  maxOps?: number;
  real: RealFactory;
  /** Progress and findings, one line each. */
  log?: (line: string) => void;
}

export interface DifftestResult {
  programs: number;
  operations: number;
  scans: number;
  /** The first divergent program, shrunk, and its report; null when all agreed. */
  failure: { seed: number; report: string } | null;
}

/** Run `programs` programs from `seed`; stops at the first divergence, which it shrinks and reports. */
export async function difftest(opts: DifftestOptions): Promise<DifftestResult> {
  let operations = 0;
  let scans = 0;
  for (let i = 0; i < opts.programs; i++) {
    const p = generateProgram(programSeed(opts.seed, i), opts.maxOps !== undefined ? { maxOps: opts.maxOps } : {});
    operations += p.ops.length;
    scans += p.ops.filter((o) => o.op === 'scan').length;
    const d = await compareProgram(p, opts.real);
    if (d !== null) {
      opts.log?.(`program ${i} (seed ${p.seed}) diverges at operation ${d.index}; shrinking`);
      const s = await shrinkProgram(p, opts.real);
      const last = s.program.ops[s.divergence.index];
      const report = [
        formatProgram(s.program),
        `diverges at operation ${s.divergence.index}${last ? ` (${formatOp(last)})` : ' (final memory contents)'}:`,
        `  simulated: ${s.divergence.simulated}`,
        `  linux:     ${s.divergence.linux}`,
      ].join('\n');
      return { programs: i + 1, operations, scans, failure: { seed: p.seed, report } };
    }
    if (opts.log && (i + 1) % 1000 === 0) opts.log(`${i + 1} programs agree`);
  }
  return { programs: opts.programs, operations, scans, failure: null };
}

export { generateProgram, programSeed };
