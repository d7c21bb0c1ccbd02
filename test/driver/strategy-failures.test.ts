// What the driver does when a strategy refuses or fails: a typed error, nothing half made, and no
// later flush poisoned by the one operation that failed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUILTIN_STRATEGIES, type DirtyStrategy, InvalidArgumentError, StrategyError, Userfaultfd, resolveStrategy } from '../../src/index.js';
import { startTestRig } from '../../src/testing/index.js';

const PS = 4096;
const uffdWp = BUILTIN_STRATEGIES['uffd-wp'];

test('uffd-wp: Driver.mmap in a process with a sync-mode userfaultfd is refused and leaves no mapping; flushes go on', async () => {
  const rig = await startTestRig({ driver: { strategy: uffdWp } });
  try {
    const bo = rig.driver.createBo(4 * PS);
    rig.driver.createBufferResource(bo);
    const mm = rig.machine.createMm();
    new Userfaultfd(mm, 0); // someone else's, sync mode
    assert.throws(() => rig.driver.mmap(mm, bo), (e) => e instanceof InvalidArgumentError && /sync-mode userfaultfd/.test(e.message));
    assert.equal(mm.vmas.length, 0, 'the refused mmap was undone');
    await rig.driver.flush();
    await rig.expectCoherent(bo);
  } finally {
    await rig.close();
  }
});

test('uffd-wp: a mapping that cannot be registered (sync-mode userfaultfd) is reported whole at every scan, never fails a flush', async () => {
  const rig = await startTestRig({ driver: { strategy: uffdWp } });
  try {
    const bo = rig.driver.createBo(4 * PS);
    rig.driver.createBufferResource(bo);
    const mm = rig.machine.createMm();
    new Userfaultfd(mm, 0);
    const vma = mm.mmap(rig.driver.space.mapping, { pgoff: bo.offset, pages: 4 }); // behind the driver's back
    const cpu = rig.machine.cpus[0]!;
    for (let round = 0; round < 3; round++) {
      cpu.write8(mm, vma.start + (round + 1) * PS + 3, round + 1);
      const r = await rig.driver.flush();
      assert.ok(r.fence > 0);
      assert.equal(bo.tracker!.scan().found, 4, 'the unregistered mapping reads as written whole');
      await rig.expectCoherent(bo);
    }
    mm.munmap(vma.start, 4 * PS);
    await rig.driver.flush();
    await rig.expectCoherent(bo);
  } finally {
    await rig.close();
  }
});

test('a createTracker that throws an untyped error: StrategyError bad-tracker naming the strategy and the cause; no BO kept', async () => {
  const boom: DirtyStrategy = { name: 'bad-create', createTracker: () => { throw new TypeError('boom in createTracker'); } };
  const rig = await startTestRig({ driver: { strategy: boom } });
  try {
    const before = rig.driver.space.all.length;
    assert.throws(() => rig.driver.createBo(4 * PS), (e) => {
      assert.ok(e instanceof StrategyError, `a StrategyError, got ${String(e)}`);
      assert.equal(e.reason, 'bad-tracker');
      assert.match(e.message, /^strategy 'bad-create' threw in createTracker: TypeError: boom in createTracker$/);
      assert.ok(e.cause instanceof TypeError);
      return true;
    });
    assert.equal(rig.driver.space.all.length, before, 'the BO was given back');
  } finally {
    await rig.close();
  }
});

test('a tracker\'s mapped() that throws: StrategyError, and the mmap is undone', async () => {
  const base = BUILTIN_STRATEGIES.pagetable;
  const strategy: DirtyStrategy = {
    name: 'bad-mapped',
    createTracker: (bo, env) => Object.assign(base.createTracker(bo, env), { mapped: () => { throw new RangeError('no'); } }),
  };
  const rig = await startTestRig({ driver: { strategy } });
  try {
    const bo = rig.driver.createBo(4 * PS);
    rig.driver.createBufferResource(bo);
    assert.throws(() => rig.driver.mmap(rig.mm, bo), (e) => e instanceof StrategyError && e.reason === 'bad-tracker' && /threw in mapped: RangeError: no/.test(e.message));
    assert.equal(rig.mm.vmas.length, 0);
    await rig.driver.flush();
  } finally {
    await rig.close();
  }
});

test('a strategy module whose createTracker throws: the error names the module; run --strategy prints one line and exits 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-strategy-'));
  try {
    const file = join(dir, 'throws-create.mjs');
    writeFileSync(file, "export default { name: 'bad-create', createTracker() { throw new TypeError('boom in createTracker'); } };\n");
    const strategy = await resolveStrategy(file);
    const rig = await startTestRig({ driver: { strategy } });
    try {
      assert.throws(() => rig.driver.createBo(PS), (e) => e instanceof StrategyError && e.spec === file && e.message.includes(`(module ${file})`));
    } finally {
      await rig.close();
    }
    const r = spawnSync(process.execPath, ['dist/src/cli/main.js', 'run', '--strategy', file, '--frames', '2'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.error, undefined, 'exited in time');
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `vgpu-dirty: strategy 'bad-create' (module ${file}) threw in createTracker: TypeError: boom in createTracker\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
