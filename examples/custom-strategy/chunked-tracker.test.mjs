// The custom strategy, run the ways a user runs one: through the driver, through the main
// job as a module path (what `compare` and `run --strategy` do), through the CLI (run and compare).
// Run: node --test examples/custom-strategy/chunked-tracker.test.mjs (after npm run build)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { resolveStrategy, runMainJob } from 'vgpu-dirty';
import { startTestRig } from 'vgpu-dirty/testing';
import chunked, { CHUNK } from './chunked-tracker.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const PS = 4096;

test('one byte written marks its whole 64 KiB chunk; a munmap keeps what its PTEs knew; the device stays coherent', async () => {
  const rig = await startTestRig({ driver: { strategy: chunked } });
  try {
    const { driver, machine, mm } = rig;
    const { bo, vma } = rig.buffer(64);
    const cpu = machine.cpus[0];
    await driver.flush();
    cpu.write8(mm, vma.start + 20 * PS + 3, 1); // chunk 1: pages 16..31
    assert.equal((await driver.flush()).pagesTransferred, CHUNK);
    assert.equal((await driver.flush()).pagesTransferred, 0, 'cleaned: nothing new');
    cpu.write8(mm, vma.start + 40 * PS, 2); // chunk 2
    mm.munmap(vma.start, vma.end - vma.start); // the D bit goes with the PTE: beforeUnmap collected it
    assert.equal((await driver.flush()).pagesTransferred, CHUNK);
    await rig.expectCoherent(bo);
  } finally {
    await rig.close();
  }
});

test('the module path resolves to the strategy, and the main job runs coherent under it', async () => {
  const s = await resolveStrategy(here('./chunked-tracker.mjs'));
  assert.equal(s.name, 'chunked');
  const r = await runMainJob({ strategy: s, frames: 30, hz: 0, gpuEvery: 15, verifyEvery: 15 });
  assert.deepEqual([r.strategy, r.coherent, r.flushErrors], ['chunked', true, 0]);
});

test('vgpu-dirty run --strategy ./examples/custom-strategy/chunked-tracker.mjs', () => {
  const cli = here('../../dist/src/cli/main.js');
  const r = spawnSync(process.execPath, [cli, 'run', '--strategy', './examples/custom-strategy/chunked-tracker.mjs', '--frames', '20', '--json'], {
    cwd: here('../..'), encoding: 'utf8', timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.deepEqual([report.strategy, report.coherent], ['chunked', true]);
});

test('the strategy type-checks against the published types (tsc --checkJs)', () => {
  const tsc = here('../../node_modules/typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '--ignoreConfig', '--noEmit', '--allowJs', '--checkJs', '--strict', '--module', 'nodenext', '--target', 'es2022', '--skipLibCheck', here('./chunked-tracker.mjs')], {
    encoding: 'utf8', timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('vgpu-dirty compare runs it beside a built-in on a shipped trace: same pages dirtied, whole chunks sent', () => {
  const cli = here('../../dist/src/cli/main.js');
  const r = spawnSync(process.execPath, [
    cli, 'compare', '--trace', 'database', '--strategy', 'pagetable', '--strategy', './examples/custom-strategy/chunked-tracker.mjs', '--json',
  ], { cwd: here('../..'), encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const [builtIn, custom] = JSON.parse(r.stdout).results;
  assert.deepEqual([builtIn.strategy, custom.strategy], ['pagetable', 'chunked']);
  assert.ok(builtIn.coherent && custom.coherent);
  assert.equal(custom.counts.pagesDirtied, builtIn.counts.pagesDirtied);
  // Sparse 128-byte updates: a 16-page chunk per dirty page sends far more than the page-exact tracker.
  assert.ok(custom.counts.pagesSent > 2 * builtIn.counts.pagesSent, `${custom.counts.pagesSent} vs ${builtIn.counts.pagesSent}`);
});
