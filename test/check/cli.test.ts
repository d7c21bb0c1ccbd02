// `vgpu-dirty check`: exit codes, output, JSON, and the replay file round trip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../src/cli/options.js';
import { CHECK_HELP, checkCommand } from '../../src/cli/check-command.js';

async function run(...argv: string[]): Promise<{ code: number; lines: string[]; errors: string[] }> {
  const lines: string[] = [];
  const errors: string[] = [];
  const code = await checkCommand(argv, (l) => lines.push(l), (l) => errors.push(l));
  return { code, lines, errors };
}

test('a holding scenario exits 0 and prints counts and the verdict', async () => {
  const { code, lines } = await run('--arch', 'x86', '--helper', 'clean-record', '--bound', '1');
  assert.equal(code, 0);
  assert.equal(lines[0], 'vgpu-dirty check: x86, clean-record, 2 CPU(s), 2 page(s), 2 write(s) per CPU, 1 round(s), consumer after-return; bound 1 preemption(s)');
  assert.match(lines[2]!, /^interleavings: \d+ \(\d+ complete, \d+ cut short\); distinct states: \d+; decision points: \d+$/);
  assert.match(lines[3]!, /^reduction: \d+ alternatives asleep, \d+ of \d+ probed alternatives settled without re-execution, \d+ decisions re-executed$/);
  assert.match(lines[4]!, /^time: \d+\.\d{3} s, \d+ interleavings\/s$/);
  assert.equal(lines.at(-1), 'verdict: HOLDS for every interleaving with at most 1 preemption(s)');
});

test('a failing scenario exits 1 with a counterexample and a replay command that reproduces it', async () => {
  const { code, lines } = await run('--arch', 'vivt', '--helper', 'clean-record');
  assert.equal(code, 1);
  assert.ok(lines.includes('verdict: FAILS (lost-write) with 1 preemption(s)'));
  const replay = lines.find((l) => l.startsWith('replay: '))!;
  assert.equal(replay, 'replay: vgpu-dirty check --arch vivt --helper clean-record --schedule 0,-2,0,1,-2,k0,-6,1,-2,k0');
  const again = await run(...replay.split(' ').slice(3));
  assert.equal(again.code, 1);
  assert.ok(again.lines.includes('VIOLATION lost-write: pgoff 1 byte 1: the device copy has 0x03 but cpu1 last wrote 0x04'));
});

test('--json prints one object with stats and the counterexample', async () => {
  const { code, lines } = await run('--arch', 'x86', '--helper', 'wp-clean', '--nested-wp', '--no-nested-rule', '--json');
  assert.equal(code, 1);
  assert.equal(lines.length, 1);
  const r = JSON.parse(lines[0]!);
  assert.equal(r.verdict, 'fails');
  assert.equal(r.violation.invariant, 'stale-writable-tlb');
  assert.equal(r.stats.interleavings, r.stats.complete + r.stats.pruned);
  assert.ok(r.counterexample.steps.length > 5);
  assert.equal(r.scenario.nestedFlushRule, false);
});

test('--save writes a replay file that --replay runs to the same failure', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-check-'));
  try {
    const file = join(dir, 'cx.json');
    const first = await run('--arch', 'x86', '--helper', 'clean-record', '--private-vma', '--walk-stops', '--save', file);
    assert.equal(first.code, 1);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')).scenario.walkStops, true);
    const again = await run('--replay', file);
    assert.equal(again.code, 1);
    assert.match(again.lines.find((l) => l.startsWith('VIOLATION'))!, /^VIOLATION guarantee-a: pgoff 0 had a dirty PTE/);
    await assert.rejects(run('--replay', file, '--arch', 'x86'), /--replay brings its own scenario and schedule; drop --arch/);
    writeFileSync(file, '{"schedule": 3}');
    await assert.rejects(run('--replay', file), UsageError);
    await assert.rejects(run('--replay', join(dir, 'missing.json')), /cannot read replay file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad arguments raise UsageError (exit code 2 in main) with a clear message', async () => {
  const bad: Array<[string[], RegExp]> = [
    [['--helper', 'strict'], /check needs --arch and --helper or --driver/],
    [['--arch', 'arm', '--helper', 'strict'], /--arch must be one of x86, sw-dirty, vivt/],
    [['--arch', 'x86', '--helper', 'strict', '--cpus', '9'], /--cpus must be an integer >= 1 and <= 4/],
    [['--arch', 'x86', '--helper', 'strict', '--bound', '-1'], /--bound must be an integer >= 0/],
    [['--arch', 'vivt', '--helper', 'strict', '--cpus', '3'], /vivt needs pages >= cpus/],
    [['--arch', 'x86', '--helper', 'strict', '--schedule', '0,k9'], /--schedule: unknown schedule token 'k9'/],
    [['--arch', 'x86', '--helper', 'strict', '--frobnicate'], /unknown option --frobnicate/],
    [['--arch', 'x86', '--helper', 'strict', '--driver', 'mkwrite'], /exclude each other/],
    [['--arch', 'x86', '--helper', 'strict', '--munmap'], /munmap needs a driver scenario/],
    [['--arch', 'x86', '--driver', 'mkwrite', '--nested-wp'], /nestedWp is a core scenario option/],
    [['--bug', 'Z9'], /--bug: unknown id 'Z9'/],
    [['--bug', 'A5'], /--bug A5 has no scenario: a compile-time bug/],
    [['--arch', 'x86', '--helper', 'strict', '--fixed'], /--fixed goes with --bug/],
    [['--arch', 'x86', '--helper', 'strict', '--plant', 'nonsense'], /--plant: unknown 'nonsense'/],
    [['--arch', 'x86', '--helper', 'strict', '--ignore', 'guarantee-z'], /--ignore: unknown 'guarantee-z'/],
    [['--arch', 'x86', '--helper', 'strict', '--max-seconds', '0'], /--max-seconds must be an integer >= 1/],
  ];
  for (const [argv, message] of bad) await assert.rejects(run(...argv), (e: unknown) => e instanceof UsageError && message.test(e.message), argv.join(' '));
});

test('--bug runs the planted scenario (exit 1) and --fixed the same one without the bug (exit 0); the replay command carries the plant', async () => {
  const buggy = await run('--bug', 'C1');
  assert.equal(buggy.code, 1);
  assert.match(buggy.lines[0]!, /driver pagetable.*two resources, planted: transferMax/);
  const replay = buggy.lines.find((l) => l.startsWith('replay: '))!;
  assert.match(replay, /--driver pagetable --resources 2 --plant transferMax --schedule /);
  assert.equal((await run(...replay.split(' ').slice(3))).code, 1);
  const fixed = await run('--bug', 'c1', '--fixed');
  assert.equal(fixed.code, 0);
  assert.equal(fixed.lines.at(-1), 'verdict: HOLDS for every interleaving with at most 2 preemption(s)');
});

test('a limit stops the search with a PARTIAL verdict and exit 3; progress goes to the error stream, not the output', async () => {
  const r = await run('--arch', 'x86', '--helper', 'wp-clean', '--nested-wp', '--max-interleavings', '50', '--jobs', '1');
  assert.equal(r.code, 3);
  assert.match(r.lines.at(-1)!, /^verdict: PARTIAL — stopped by --max-interleavings after 50 interleavings; no violation in the part explored, which proves nothing about the rest$/);
  const json = await run('--arch', 'x86', '--helper', 'wp-clean', '--nested-wp', '--max-interleavings', '50', '--jobs', '1', '--json');
  assert.equal(JSON.parse(json.lines[0]!).verdict, 'partial');
  assert.equal(JSON.parse(json.lines[0]!).stoppedBy, 'max-interleavings');
  assert.ok(r.lines.every((l) => !l.startsWith('check: ')), 'no progress lines on the output stream');
});

test('--help prints the usage', async () => {
  const { code, lines } = await run('--help');
  assert.equal(code, 0);
  assert.deepEqual(lines, [CHECK_HELP]);
});

test('the tracker helpers and their known bugs run from the command line; --bug B5 runs at its row\'s bound', async () => {
  const uffd = await run('--arch', 'x86', '--helper', 'uffd-wp', '--bound', '1');
  assert.equal(uffd.code, 0);
  assert.match(uffd.lines[0]!, /^vgpu-dirty check: x86, uffd-wp, /);
  assert.match(uffd.lines[1]!, /uffd-wp-writable/);
  const b1 = await run('--bug', 'B1');
  assert.equal(b1.code, 1);
  assert.ok(b1.lines.includes('verdict: FAILS (uffd-wp-writable) with 0 preemption(s)'));
  const replay = b1.lines.find((l) => l.startsWith('replay: '))!;
  assert.match(replay, /--helper uffd-wp --unregistered-tail --plant scanProtectsUnregistered --schedule /);
  assert.equal((await run(...replay.split(' ').slice(3))).code, 1);
  const b5 = await run('--bug', 'B5', '--fixed');
  assert.equal(b5.code, 0);
  assert.match(b5.lines[0]!, /soft-dirty.*remap; bound 0 preemption/);
});
