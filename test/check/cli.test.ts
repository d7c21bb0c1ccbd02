// `vgpu-dirty check`: exit codes, output, JSON, and the replay file round trip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../src/cli/args.js';
import { CHECK_HELP, checkCommand } from '../../src/cli/check-command.js';

function run(...argv: string[]): { code: number; lines: string[] } {
  const lines: string[] = [];
  const code = checkCommand(argv, (l) => lines.push(l));
  return { code, lines };
}

test('a holding scenario exits 0 and prints counts and the verdict', () => {
  const { code, lines } = run('--arch', 'x86', '--helper', 'clean-record', '--bound', '1');
  assert.equal(code, 0);
  assert.equal(lines[0], 'vgpu-dirty check: x86, clean-record, 2 CPU(s), 2 page(s), 2 write(s) per CPU, 1 round(s), consumer after-return; bound 1 preemption(s)');
  assert.match(lines[2]!, /^interleavings: \d+ \(\d+ complete, \d+ cut by state hashing\); distinct states: \d+; decision points: \d+$/);
  assert.match(lines[3]!, /^time: \d+\.\d{3} s, \d+ interleavings\/s$/);
  assert.equal(lines.at(-1), 'verdict: HOLDS for every interleaving with at most 1 preemption(s)');
});

test('a failing scenario exits 1 with a counterexample and a replay command that reproduces it', () => {
  const { code, lines } = run('--arch', 'vivt', '--helper', 'clean-record');
  assert.equal(code, 1);
  assert.ok(lines.includes('verdict: FAILS (lost-write) with 1 preemption(s)'));
  const replay = lines.find((l) => l.startsWith('replay: '))!;
  assert.equal(replay, 'replay: vgpu-dirty check --arch vivt --helper clean-record --schedule 0,-2,0,1,-2,k0,-6,1,-2,k0');
  const again = run(...replay.split(' ').slice(3));
  assert.equal(again.code, 1);
  assert.ok(again.lines.includes('VIOLATION lost-write: pgoff 1 byte 1: the device copy has 0x03 but cpu1 last wrote 0x04'));
});

test('--json prints one object with stats and the counterexample', () => {
  const { code, lines } = run('--arch', 'x86', '--helper', 'wp-clean', '--nested-wp', '--no-nested-rule', '--json');
  assert.equal(code, 1);
  assert.equal(lines.length, 1);
  const r = JSON.parse(lines[0]!);
  assert.equal(r.verdict, 'fails');
  assert.equal(r.violation.invariant, 'stale-writable-tlb');
  assert.equal(r.stats.interleavings, r.stats.complete + r.stats.pruned);
  assert.ok(r.counterexample.steps.length > 5);
  assert.equal(r.scenario.nestedFlushRule, false);
});

test('--save writes a replay file that --replay runs to the same failure', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-check-'));
  try {
    const file = join(dir, 'cx.json');
    const first = run('--arch', 'x86', '--helper', 'clean-record', '--private-vma', '--walk-stops', '--save', file);
    assert.equal(first.code, 1);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')).scenario.walkStops, true);
    const again = run('--replay', file);
    assert.equal(again.code, 1);
    assert.match(again.lines.find((l) => l.startsWith('VIOLATION'))!, /^VIOLATION guarantee-a: pgoff 0 had a dirty PTE/);
    assert.throws(() => run('--replay', file, '--arch', 'x86'), /--replay brings its own scenario and schedule; drop --arch/);
    writeFileSync(file, '{"schedule": 3}');
    assert.throws(() => run('--replay', file), UsageError);
    assert.throws(() => run('--replay', join(dir, 'missing.json')), /cannot read replay file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad arguments raise UsageError (exit code 2 in main) with a clear message', () => {
  const bad: Array<[string[], RegExp]> = [
    [['--helper', 'strict'], /check needs --arch and --helper/],
    [['--arch', 'arm', '--helper', 'strict'], /--arch must be one of x86, sw-dirty, vivt/],
    [['--arch', 'x86', '--helper', 'strict', '--cpus', '9'], /--cpus must be an integer >= 1 and <= 4/],
    [['--arch', 'x86', '--helper', 'strict', '--bound', '-1'], /--bound must be an integer >= 0/],
    [['--arch', 'vivt', '--helper', 'strict', '--cpus', '3'], /vivt needs pages >= cpus/],
    [['--arch', 'x86', '--helper', 'strict', '--schedule', '0,k9'], /--schedule: unknown schedule token 'k9'/],
    [['--arch', 'x86', '--helper', 'strict', '--frobnicate'], /unknown option --frobnicate/],
  ];
  for (const [argv, message] of bad) assert.throws(() => run(...argv), (e: unknown) => e instanceof UsageError && message.test(e.message), argv.join(' '));
});

test('--help prints the usage', () => {
  const { code, lines } = run('--help');
  assert.equal(code, 0);
  assert.deepEqual(lines, [CHECK_HELP]);
});
