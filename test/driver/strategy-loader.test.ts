import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BUILTIN_STRATEGIES, BUILTIN_STRATEGY_NAMES, type DirtyStrategy, Machine, StrategyError, type StrategyErrorReason, VgpuError, resolveStrategy,
} from '../../src/index.js';
import { startTestRig } from '../../src/testing/index.js';

const dir = mkdtempSync(join(tmpdir(), 'vgpu-strategy-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A module file in the scratch directory; returns its path relative to it. */
function module(name: string, text: string): string {
  writeFileSync(join(dir, name), text);
  return `./${name}`;
}

/** A self-contained tracker (no imports): a Set of pages, full on every scan. */
const TRACKER = `{
  method: 'every-page', switches: 0, pages: new Set(),
  mapWritable() { return true; }, mkwrite() {}, beforeUnmap() {},
  scan() { for (let p = 0; p < this.n; p++) this.pages.add(p); return { found: this.n, switchedTo: null }; },
  takeDirty(from, to, emit) { let n = 0; for (let p = from; p < to; p++) if (this.pages.delete(p)) { emit(p, p + 1); n++; } return n; },
  clearDirty(from, to) { for (let p = from; p < to; p++) this.pages.delete(p); },
  markDirty(from, to) { for (let p = from; p < to; p++) this.pages.add(p); },
  peekDirty(out) { for (const p of this.pages) out.set(p); },
}`;

async function rejects(spec: string | unknown, reason: StrategyErrorReason, message: RegExp): Promise<void> {
  await assert.rejects(resolveStrategy(spec as string, { cwd: dir }), (e: unknown) => {
    assert.ok(e instanceof StrategyError, `a StrategyError, got ${String(e)}`);
    assert.ok(e instanceof VgpuError);
    assert.equal(e.reason, reason);
    assert.equal(e.code, 'ESTRATEGY');
    assert.match(e.message, message);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

test('built-in names resolve to the built-in strategies, all six', async () => {
  assert.deepEqual(BUILTIN_STRATEGY_NAMES, ['adaptive', 'pagetable', 'mkwrite', 'full', 'soft-dirty', 'uffd-wp']);
  for (const name of BUILTIN_STRATEGY_NAMES) assert.equal(await resolveStrategy(name), BUILTIN_STRATEGIES[name]);
});

test('an unknown name is refused and the built-ins are listed', async () => {
  await rejects('pagetabel', 'unknown', /unknown strategy 'pagetabel'.*adaptive, pagetable, mkwrite, full, soft-dirty, uffd-wp/);
});

test('a module path with no file there: not-found, naming where it looked', async () => {
  await rejects('./nope.js', 'not-found', /'\.\/nope\.js' not found \(looked for .*nope\.js\)/);
});

test('a module that throws while loading, or does not parse: load-failed with the cause', async () => {
  await rejects(module('throws.mjs', `throw new Error('no GPU here');\n`), 'load-failed', /failed to load: Error: no GPU here/);
  await rejects(module('syntax.mjs', `export default {\n`), 'load-failed', /failed to load: SyntaxError/);
  await rejects(module('imports.mjs', `import 'not-a-package-anywhere';\nexport default {};\n`), 'load-failed', /failed to load: Error: Cannot find package/);
});

test('a module without a default or strategy export, or exporting something else: bad-export saying what is wrong', async () => {
  await rejects(module('named.mjs', `export const tracker = 1;\n`), 'bad-export', /no default export and no 'strategy' export \(it exports tracker\)/);
  await rejects(module('fn.mjs', `export default () => ({});\n`), 'bad-export', /expected an object with name and createTracker, got function/);
  await rejects(module('noname.mjs', `export default { createTracker() {} };\n`), 'bad-export', /name must be a non-empty string/);
  await rejects(module('nocreate.mjs', `export default { name: 'x' };\n`), 'bad-export', /createTracker must be a function/);
  await rejects(module('backing.mjs', `export default { name: 'x', backing: 'vram', createTracker() {} };\n`), 'bad-export', /backing must be 'device' or 'shmem', got "vram"/);
  await rejects({ name: 'object', createTracker: 1 }, 'bad-export', /createTracker must be a function/);
});

test('a module strategy loads from a path (default or `strategy` export) and drives a real flush', async () => {
  const path = module('every-page.mjs', `export const strategy = { name: 'every-page', createTracker: (bo) => Object.assign(${TRACKER}, { n: bo.pages }) };\n`);
  const s = await resolveStrategy(path, { cwd: dir });
  assert.equal(s.name, 'every-page');
  const rig = await startTestRig({ driver: { strategy: s } });
  try {
    const { bo, vma } = rig.buffer(3);
    rig.machine.cpus[0]!.write8(rig.mm, vma.start + 4096 + 7, 42);
    const r = await rig.driver.flush();
    assert.equal(r.pagesTransferred, 3, 'the user tracker\'s pages reached the resource');
    await rig.expectCoherent(bo);
  } finally {
    await rig.close();
  }
});

test('a tracker without the contract\'s methods is refused when the BO is created (bad-tracker), and the BO is not kept', async () => {
  const broken: DirtyStrategy = { name: 'broken', createTracker: () => ({ scan() {} }) as never };
  const rig = await startTestRig({ driver: { strategy: broken } });
  try {
    assert.throws(() => rig.driver.createBo(4096), (e: unknown) => e instanceof StrategyError && e.reason === 'bad-tracker'
      && /made a tracker without mapWritable, mkwrite, beforeUnmap, takeDirty, clearDirty, markDirty, peekDirty/.test(e.message));
    assert.equal(rig.driver.space.all.length, 0);
  } finally {
    await rig.close();
  }
});

test('a strategy the machine cannot run is refused at connect: soft-dirty without a soft-dirty machine (unsupported)', async () => {
  await assert.rejects(startTestRig({ driver: { strategy: BUILTIN_STRATEGIES['soft-dirty'] } }), (e: unknown) =>
    e instanceof StrategyError && e.reason === 'unsupported' && /needs a machine with soft-dirty tracking/.test(e.message));
  assert.equal(new Machine({ softDirty: true }).config.softDirty, true);
});
