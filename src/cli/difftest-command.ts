import type { CommandSpec, Values } from './options.js';
import { difftest } from '../difftest/index.js';
import { concurrentCheck, LinuxWpMemory, probeLinuxWp } from '../native/index.js';

export const DIFFTEST: CommandSpec = {
  name: 'difftest',
  summary: 'run random programs on the simulated uffd-wp tracker and on the real Linux kernel and compare every scan (needs koffi)',
  description: `Runs seeded random sequential programs on the simulated userfaultfd write-protect tracker and on the running Linux kernel (memfd shared memory, async uffd-wp, PAGEMAP_SCAN; needs the optional koffi package and Linux 6.7+) and compares every outcome: each scan's regions (start, end, categories) and walk_end, each call's errno, and the final memory contents. Operations: writes of any length, scans with and without write-protect and with random category masks, vector sizes and max_pages, UFFDIO_WRITEPROTECT on and off, register/unregister, MADV_DONTNEED, hole punch, munmap and re-mmap of sub-ranges. Prints the seed; on a divergence prints the shortest program that shows it (operations deleted while it still diverges).

Then the concurrent check: writer threads store into real shared memory while the main thread scans-and-protects and copies the reported pages into a device copy; after the writers stop and a final scan the copy must equal memory.`,
  options: [
    { name: 'programs', type: 'int', min: 1, max: 10_000_000, default: 1000, description: 'random programs' },
    { name: 'seed', type: 'int', value: 'S', min: 0, max: 2 ** 32 - 1, defaultText: 'random, printed', description: 'run seed (program i has a seed derived from S and i)' },
    { name: 'max-ops', type: 'int', min: 1, max: 1000, default: 40, description: 'operations per program at most' },
    { name: 'concurrent-ms', type: 'int', value: 'T', min: 0, max: 3_600_000, default: 1000, description: 'duration of the concurrent check, 0 to skip' },
  ],
  epilogue: 'Exit codes: 0 identical and coherent, 1 a divergence, incoherence, or the real-kernel backend is unavailable (the one-line reason is printed), 2 bad arguments.',
  run: (args, _positionals, io) => difftestCommand(args, io.out),
};

async function difftestCommand(args: Values, out: (line: string) => void): Promise<number> {
  const probe = await probeLinuxWp();
  if (!probe.ok) {
    out(`difftest: real kernel unavailable: ${probe.reason}`);
    return 1;
  }
  const programs = args.programs as number;
  const seed = (args.seed as number | undefined) ?? (Math.random() * 2 ** 32) >>> 0;
  const maxOps = args['max-ops'] as number;
  out(`difftest: seed ${seed}, ${programs} program(s) of at most ${maxOps} operations${probe.userModeOnly ? ' (userfaultfd in user-mode-only mode)' : ''}`);
  const started = Date.now();
  const r = await difftest({
    programs, seed, maxOps, real: (pages, pmdOffset) => LinuxWpMemory.open({ pages, pmdOffset }), log: (l) => out(`  ${l}`),
  });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (r.failure !== null) {
    out(`difftest: DIVERGENCE after ${r.programs} program(s) (seed ${seed}; replay: vgpu-dirty difftest --seed ${seed} --programs ${r.programs} --max-ops ${maxOps})`);
    out(r.failure.report);
    return 1;
  }
  out(`difftest: ${r.programs} program(s), ${r.operations} operations, ${r.scans} scans: identical to Linux (${secs} s)`);
  const ms = args['concurrent-ms'] as number;
  if (ms === 0) return 0;
  const c = await concurrentCheck({ pages: 4096, writers: 2, durationMs: ms, seed });
  const verdict = c.mismatchedPages.length === 0 ? 'device copy equals memory' : `INCOHERENT: ${c.mismatchedPages.length} page(s) differ, first ${c.mismatchedPages.slice(0, 8).join(', ')}`;
  out(`concurrent: 2 writer threads, ${c.stores} stores, ${c.scans} scans, ${c.pagesCopied} pages copied in ${c.regions} regions: ${verdict}`);
  return c.mismatchedPages.length === 0 ? 0 : 1;
}
