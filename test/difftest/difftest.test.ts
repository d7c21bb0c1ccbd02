import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PM_SCAN_WP_MATCHING, type PmScanArgs, type RegionScan, SimWpMemory } from '../../src/index.js';
import { compareProgram, difftest, formatProgram, generateProgram, programSeed, shrinkProgram } from '../../src/difftest/index.js';
import { LinuxWpMemory, probeLinuxWp } from '../../src/native/index.js';

const SEED = 20261128;
const PROGRAMS = 150;
const probe = await probeLinuxWp();

test(`${PROGRAMS} random programs give identical results on the simulator and on Linux (seed ${SEED})`, async (t) => {
  if (!probe.ok) {
    t.skip(`real-kernel backend unavailable: ${probe.reason}`);
    return;
  }
  t.diagnostic(`seed ${SEED}; replay: vgpu-dirty difftest --seed ${SEED} --programs ${PROGRAMS}`);
  const r = await difftest({ programs: PROGRAMS, seed: SEED, real: (pages, pmdOffset) => LinuxWpMemory.open({ pages, pmdOffset }) });
  assert.equal(r.failure, null, r.failure?.report);
  assert.ok(r.scans > PROGRAMS, `${r.scans} scans`);
});

test('programs are a function of their seed', () => {
  const a = generateProgram(programSeed(5, 3));
  const b = generateProgram(programSeed(5, 3));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, generateProgram(programSeed(5, 4)));
  assert.match(formatProgram(a), /^program seed=\d+ pages=\d+ pmd-offset=\d+/);
});

/** A simulator with a planted bug: scan-and-protect forgets the last page of every region it reports. */
class BuggySim extends SimWpMemory {
  override scan(args: PmScanArgs): RegionScan {
    const r = super.scan(args);
    if ((args.flags ?? 0) & PM_SCAN_WP_MATCHING) {
      for (const g of r.regions) if (g.end - g.start > 1) super.writeProtect(g.end - 1, 1, false);
    }
    return r;
  }
}

test('a divergence is found and shrunk to a short program that still shows it', async () => {
  const real = async (pages: number, pmdOffset: number) => new SimWpMemory({ pages, pmdOffset });
  const buggy = async (pages: number, pmdOffset: number) => new BuggySim({ pages, pmdOffset });
  // The reference against itself: no divergence.
  assert.equal(await compareProgram(generateProgram(programSeed(1, 0)), real), null);
  const r = await difftest({ programs: 200, seed: 1, real: buggy });
  assert.ok(r.failure !== null, 'the planted bug was not found');
  const lines = r.failure.report.split('\n').filter((l) => /^\s+\d+\s/.test(l));
  assert.ok(lines.length <= 4, `shrunk program still has ${lines.length} operations:\n${r.failure.report}`);
  // Shrinking is idempotent: the shrunk program cannot lose another operation.
  const p = generateProgram(r.failure.seed);
  const s = await shrinkProgram(p, buggy);
  const again = await shrinkProgram(s.program, buggy);
  assert.equal(again.program.ops.length, s.program.ops.length);
});
