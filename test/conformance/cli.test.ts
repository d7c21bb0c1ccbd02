import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDevice, type Device } from '../../device/index.js';
import { ALL_CASES } from '../../src/conformance/index.js';
import { earlyFence, startBrokenDevice } from './broken-device.js';
import { CONTROL_TOKEN, SMALL_DEVICE, TOKEN } from './devices.js';
import { runCli } from './run-cli.js';

describe('vgpu-dirty conformance (CLI)', () => {
  let device: Device;
  before(async () => {
    device = await startDevice(SMALL_DEVICE);
  });
  after(() => device.close());

  it('prints one line per case and a summary, exit 0 when everything passes', async () => {
    const r = await runCli(['conformance', device.url, '--token', TOKEN, '--control-token', CONTROL_TOKEN, '--only', 'hs.,seq.']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    const cases = ALL_CASES.filter((c) => c.id.startsWith('hs.') || c.id.startsWith('seq.'));
    assert.equal(lines.length, cases.length + 1);
    for (const [i, c] of cases.entries()) assert.match(lines[i]!, new RegExp(`^PASS  ${c.id.replace('.', '\\.')} +§${c.section.replace('.', '\\.')} +\\S`));
    assert.match(lines.at(-1)!, new RegExp(`^${cases.length} cases: ${cases.length} passed, 0 failed, 0 not applicable — CONFORMS`));
  });

  it('--json prints one object; a failing case makes the exit code 1 and says what differed', async () => {
    const broken = await startBrokenDevice(device.url, earlyFence);
    try {
      const r = await runCli(['conformance', broken.url, '--token', TOKEN, '--only', 'fence.failure-accounting,fence.ok', '--json']);
      assert.equal(r.code, 1, r.stderr);
      const j = JSON.parse(r.stdout) as { summary: { pass: number; fail: number }; results: { id: string; status: string; detail: string }[] };
      assert.deepEqual(j.summary, { pass: 1, fail: 1, na: 0, total: 2 });
      const failed = j.results.find((x) => x.status === 'FAIL')!;
      assert.equal(failed.id, 'fence.failure-accounting');
      assert.match(failed.detail, /signal after two failures: expected .*"ok":false.*got .*"ok":true/);
    } finally {
      await broken.close();
    }
  });

  it('marks cases N-A when a credential is missing', async () => {
    const r = await runCli(['conformance', device.url, '--token', TOKEN, '--only', 'hs.control']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^N-A   hs\.control +§3 +no --control-token given$/m);
  });

  it('fails every case when no session can be opened, and exits 2 on bad arguments', async () => {
    const r = await runCli(['conformance', device.url, '--only', 'ping.']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /FAIL  ping\.pong .*cannot open a session: .*bad_token.*does the device need --token\?/);
    for (const args of [[], ['http://x'], [device.url, '--only', 'nothing-matches'], [device.url, '--bogus']]) {
      const bad = await runCli(['conformance', ...args]);
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
    }
    const list = await runCli(['conformance', '--list']);
    assert.equal(list.stdout.trim().split('\n').length, ALL_CASES.length);
  });
});
