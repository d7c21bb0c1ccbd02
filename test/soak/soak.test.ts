// A short soak with faults: every invariant holds over a fixed seed range. The long run and
// its figures are in docs/reliability.md; CI runs a longer range (.ci/run).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatViolation, soak } from '../../src/soak/index.js';

test('seeds 1..20 with faults hold every invariant', async (t) => {
  t.diagnostic('seeds 1..20 (replay one: vgpu-dirty soak --seed N --runs 1 --trace)');
  const s = await soak({ seed: 1, runs: 20 });
  for (const v of s.violations) t.diagnostic(formatViolation(v).join('\n'));
  assert.deepEqual(s.violations.map((v) => `seed ${v.seed}: ${v.invariant}`), []);
  assert.ok(s.faultsInjected >= 80, `${s.faultsInjected} faults injected`);
  assert.ok(s.flushesChecked >= 200, `${s.flushesChecked} flushes checked`);
  assert.equal(s.hangs, 0);
});
