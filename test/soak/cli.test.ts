// `vgpu-dirty soak`: help, argument errors (exit 2), the summary, and exit 1 with a
// replayable report when an invariant fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Namespace } from '../../device/store.js';
import { UsageError } from '../../src/cli/options.js';
import { SOAK_HELP, soakCommand } from '../../src/cli/soak-command.js';

async function run(...argv: string[]): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const code = await soakCommand(argv, (l) => lines.push(l));
  return { code, lines };
}

test('--help prints the usage', async () => {
  assert.deepEqual(await run('--help'), { code: 0, lines: [SOAK_HELP] });
});

test('bad arguments raise UsageError with a clear message', async () => {
  const bad: Array<[string[], RegExp]> = [
    [['--runs', '0'], /--runs must be an integer >= 1/],
    [['--seed', '-1'], /--seed must be an integer >= 0/],
    [['--seed', 'x'], /--seed must be an integer/],
    [['--seconds', '0'], /--seconds must be an integer >= 1/],
    [['--repeat', '0'], /--repeat must be an integer >= 1/],
    [['--hang-ms', '5'], /--hang-ms must be an integer >= 100/],
    [['--json=1'], /--json takes no value/],
    [['--frobnicate'], /unknown option --frobnicate/],
    [['7'], /unexpected argument '7'/],
  ];
  for (const [argv, message] of bad) {
    await assert.rejects(run(...argv), (e: unknown) => e instanceof UsageError && message.test(e.message), argv.join(' '));
  }
});

test('the command line runs a short soak and exits by itself (nothing keeps the process alive)', (t) => {
  t.diagnostic('seeds 1..2');
  const r = spawnSync(process.execPath, ['dist/src/cli/main.js', 'soak', '--seed', '1', '--runs', '2', '--json'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.error, undefined, 'the process did not exit in time');
  const s = JSON.parse(r.stdout);
  assert.equal(r.status, s.violations.length === 0 ? 0 : 1);
  assert.deepEqual([s.runs, s.firstSeed, s.lastSeed], [2, 1, 2]);
});

test('the command line exits 2 on bad arguments', () => {
  const r = spawnSync(process.execPath, ['dist/src/cli/main.js', 'soak', '--runs', 'many'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--runs must be an integer/);
  assert.equal(r.stdout, '');
});

test('--json prints one summary object; no violation exits 0', async (t) => {
  t.diagnostic('seeds 1..3, no faults');
  const { code, lines } = await run('--seed', '1', '--runs', '3', '--no-faults', '--json');
  assert.equal(lines.length, 1);
  const s = JSON.parse(lines[0]!);
  assert.equal(code, 0);
  assert.deepEqual(
    Object.keys(s).sort(),
    ['deviceWrites', 'faults', 'faultsInjected', 'firstSeed', 'flushesChecked', 'flushesRejected', 'flushesUnchecked', 'hangs', 'lastSeed',
      'lostPages', 'maxConvergeFlushes', 'maxConvergeMs', 'readbacks', 'resyncs', 'runs', 'seconds', 'steps', 'violations'],
  );
  assert.deepEqual([s.runs, s.firstSeed, s.lastSeed, s.faultsInjected, s.lostPages, s.hangs, s.violations], [3, 1, 3, 0, 0, 0, []]);
  assert.ok(s.flushesChecked > 0 && s.steps > 0);
});

test('a violation prints seed, step, invariant, what differed and the replay line, and exits 1', async (t) => {
  t.diagnostic('seed 2, no faults, a device that drops every DMA write');
  const orig = Namespace.prototype.write;
  const origSpans = Namespace.prototype.writeSpans;
  Namespace.prototype.write = function (id, ranges, seq) {
    return seq === undefined ? orig.call(this, id, ranges, seq) : 0;
  };
  Namespace.prototype.writeSpans = () => 0; // the other DMA op (span frames)
  try {
    const { code, lines } = await run('--seed', '2', '--runs', '1', '--no-faults');
    assert.equal(code, 1);
    assert.match(lines[0]!, /^VIOLATION seed 2 step \d+ \(.+\): flush-holds-writes: a flush called at step \d+ resolved, but the device lacks data written before it$/);
    assert.match(lines[1]!, /^ {2}BO \d+ \(handle \d+\): \d+ page\(s\) differ \([\d, …]+\); first at byte \d+: expected 0x[0-9a-f]{2}, the device has 0x[0-9a-f]{2}$/);
    assert.equal(lines[2], '  replay: vgpu-dirty soak --seed 2 --runs 1 --no-faults --trace');
    assert.ok(lines.some((l) => /^violations +1$/.test(l)));
  } finally {
    Namespace.prototype.write = orig;
    Namespace.prototype.writeSpans = origSpans;
  }
});

test('--seconds stops starting runs once the time is up; --repeat runs each seed again', async (t) => {
  t.diagnostic('from seed 1, no faults, 1 s; then seed 4 three times');
  const timed = JSON.parse((await run('--seconds', '1', '--no-faults', '--json')).lines[0]!);
  assert.ok(timed.runs >= 1 && timed.seconds >= 1 && timed.seconds < 10, `${timed.runs} runs in ${timed.seconds} s`);
  assert.equal(timed.lastSeed, timed.runs);
  const repeated = JSON.parse((await run('--seed', '4', '--runs', '3', '--repeat', '3', '--no-faults', '--json')).lines[0]!);
  assert.deepEqual([repeated.runs, repeated.firstSeed, repeated.lastSeed], [3, 4, 4]);
});

test('--trace prints every step of the run', async () => {
  const { lines } = await run('--seed', '5', '--runs', '1', '--no-faults', '--trace');
  assert.equal(lines[0], 'step 0: barrier');
  assert.ok(lines.some((l) => /^step \d+: calm$/.test(l)));
  assert.ok(lines.some((l) => /^ {2}flush \(step \d+\) resolved, device holds every write before it$/.test(l)));
});
