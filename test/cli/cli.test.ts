// The command line as a user meets it: help on every command and which stream it goes to, the
// version, bad numbers, unknown options, stray arguments and the default command. Most cases run
// runCli in this process with the two streams captured; a few spawn the executable to show that
// main wires them to stdout, stderr and the exit code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { COMMANDS, overview, runCli } from '../../src/cli/commands.js';
import { type CommandSpec, UsageError, commandHelp, parseCommandLine } from '../../src/cli/options.js';

const CLI = 'dist/src/cli/main.js';
const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(...argv: string[]): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { out: (l) => (stdout += `${l}\n`), err: { write: (t) => (stderr += t), isTTY: false, columns: undefined } });
  return { code, stdout, stderr };
}

function spawnCli(...argv: string[]): Captured {
  const r = spawnSync(process.execPath, [CLI, ...argv], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.error, undefined, `${argv.join(' ')}: did not exit in time`);
  return { code: r.status!, stdout: r.stdout, stderr: r.stderr };
}

/** A usage error: exit 2, nothing on stdout, exactly one line on stderr that matches. */
function assertUsageError(r: Captured, want: RegExp, what: string): void {
  assert.equal(r.code, 2, `${what}: exit ${r.code}, stderr ${r.stderr}`);
  assert.equal(r.stdout, '', what);
  assert.equal(r.stderr.split('\n').length, 2, `${what}: one line on stderr, got ${JSON.stringify(r.stderr)}`);
  assert.match(r.stderr, want, what);
}

const NAMES = COMMANDS.map((c) => c.name);

test('every command is listed, and help is on every one of them: --help, -h and help <command> print the same text on stdout, exit 0', async () => {
  assert.deepEqual(NAMES, ['run', 'demo', 'check', 'device', 'difftest', 'soak', 'conformance', 'replay', 'compare', 'help']);
  for (const spec of COMMANDS) {
    const text = `${commandHelp(spec)}\n`;
    assert.match(text, new RegExp(`^Usage: vgpu-dirty ${spec.name}`), spec.name);
    for (const argv of [[spec.name, '--help'], [spec.name, '-h'], ['help', spec.name]]) {
      assert.deepEqual(await cli(...argv), { code: 0, stdout: text, stderr: '' }, argv.join(' '));
    }
  }
});

test('help wins over every other error on the same command line', async () => {
  for (const argv of [
    ['run', '--help', '--frames', 'abc'],
    ['run', '--frames', 'abc', '-h'],
    ['device', '--port', '1k', '--help'],
    ['check', '--frobnicate', '--help'],
    ['soak', 'stray', '--help'],
    ['conformance', 'a', 'b', 'c', '-h'],
    ['replay', '--json=yes', '--help'],
  ]) {
    const r = await cli(...argv);
    assert.equal(r.code, 0, argv.join(' '));
    assert.equal(r.stderr, '', argv.join(' '));
    assert.match(r.stdout, new RegExp(`^Usage: vgpu-dirty ${argv[0]}`), argv.join(' '));
  }
  // An option's value that reads '--help' is a value, not a request for help.
  assertUsageError(await cli('run', '--device', '--help'), /--device must be a ws:\/\/ or wss:\/\/ URL, got '--help'/, 'value --help');
});

test("'help' alone, --help and -h list every command and say where the options are", async () => {
  const list = `${overview()}\n`;
  for (const argv of [['help'], ['--help'], ['-h']]) assert.deepEqual(await cli(...argv), { code: 0, stdout: list, stderr: '' }, argv.join(' '));
  for (const name of NAMES) assert.match(list, new RegExp(`^  ${name} +\\S`, 'm'), name);
  assert.match(list.replace(/\s+/g, ' '), /Options: every command has its own; 'vgpu-dirty help <command>' or 'vgpu-dirty <command> --help' lists them/);
  assertUsageError(await cli('help', 'bogus'), /^vgpu-dirty help: unknown command 'bogus' \(one of run, demo/, 'help bogus');
  assertUsageError(await cli('help', 'run', 'check'), /unexpected argument 'check'/, 'help run check');
});

test('the help is made from the option table: every option appears, and every option it mentions exists', () => {
  const known = new Set(COMMANDS.flatMap((c) => c.options.map((o) => o.name)).concat(['help', 'version']));
  for (const spec of COMMANDS) {
    const text = commandHelp(spec);
    for (const o of spec.options) assert.match(text, new RegExp(`^  (-\\w, )?--${o.name}\\b`, 'm'), `${spec.name} --${o.name}`);
    for (const [, name] of text.matchAll(/(?<![\w-])--([a-z][\w-]*)/g)) assert.ok(known.has(name!), `${spec.name}'s help mentions --${name}, which no command has`);
    for (const line of text.split('\n')) assert.ok(line.length <= 79 || /^Usage|^ {7}vgpu-dirty|^ {2}/.test(line), `${spec.name}: line too long: ${line}`);
  }
});

test('--version and -V print the version on stdout', async () => {
  for (const flag of ['--version', '-V']) assert.deepEqual(await cli(flag), { code: 0, stdout: `${VERSION}\n`, stderr: '' });
});

test('numbers follow one rule with one message: the option, what it accepts, what was given', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['device', '--port', '1k'], /^vgpu-dirty device: --port must be an integer >= 0 and <= 65535, got '1k' \(see 'vgpu-dirty help device'\)$/m],
    [['device', '--port', '-1'], /--port must be an integer >= 0 and <= 65535, got '-1'/],
    [['device', '--port', '65536'], /--port must be an integer >= 0 and <= 65535, got '65536'/],
    [['device', '--port', '8080.5'], /--port must be an integer >= 0 and <= 65535, got '8080.5'/],
    [['device', '--port', ''], /--port must be an integer >= 0 and <= 65535, got ''/],
    [['device', '--max-bo-size', '1t'], /--max-bo-size must be a byte count \(an integer, optionally with k, m or g\) >= 1 and <= 4294967295, got '1t'/],
    [['run', '--frames', 'abc'], /^vgpu-dirty run: --frames must be an integer >= 0 and <= 1000000, got 'abc'/],
    [['run', '--frames', '1e3'], /--frames must be an integer >= 0 and <= 1000000, got '1e3'/],
    [['run', '--frames', '0x10'], /--frames must be an integer >= 0 and <= 1000000, got '0x10'/],
    [['run', '--cpus', '1'], /--cpus must be an integer >= 2 and <= 64, got '1'/],
    [['check', '--bound', '9'], /--bound must be an integer >= 0 and <= 8, got '9'/],
    [['soak', '--runs', 'many'], /--runs must be an integer >= 1 and <= 100000000, got 'many'/],
    [['difftest', '--seed', '-5'], /--seed must be an integer >= 0 and <= 4294967295, got '-5'/],
    [['run', '--frames'], /--frames needs a value: an integer >= 0 and <= 1000000/],
    [['run', '--strategy', 'magic'], /--strategy: unknown strategy 'magic': built-in ones are adaptive, pagetable, mkwrite, full, soft-dirty, uffd-wp; a module path starts with/],
    [['run', '--memory', 'fake'], /--memory must be one of simulated, real, got 'fake'/],
  ];
  for (const [argv, want] of cases) assertUsageError(await cli(...argv), want, argv.join(' '));
});

test('unknown options, stray arguments, values given to flags and unknown commands exit 2 with one clear line', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['run', '--port', '1'], /^vgpu-dirty run: unknown option --port \(see 'vgpu-dirty help run'\)$/m],
    [['run', '-x'], /unknown option -x/],
    [['demo', 'extra'], /^vgpu-dirty demo: unexpected argument 'extra'/],
    [['conformance', 'ws://127.0.0.1:1', 'ws://127.0.0.1:2'], /unexpected argument 'ws:\/\/127.0.0.1:2'/],
    [['soak', '--json=1'], /--json takes no value/],
    [['bogus'], /^vgpu-dirty: unknown command 'bogus' \(one of run, .*\) \(see 'vgpu-dirty help'\)$/m],
    [['conformance'], /conformance needs the device URL/],
    [['replay'], /replay needs a recording file/],
  ];
  for (const [argv, want] of cases) assertUsageError(await cli(...argv), want, argv.join(' '));
});

test('the default command is run, also when the first argument is one of its options', async () => {
  assertUsageError(await cli('--frames', 'abc'), /^vgpu-dirty run: --frames must be/, 'default with a bad number');
  assertUsageError(await cli('--frobnicate'), /^vgpu-dirty run: unknown option --frobnicate/, 'default with an unknown option');
  const r = spawnCli('--frames', '5', '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(Object.entries(JSON.parse(r.stdout) as Record<string, unknown>).filter(([k]) => k === 'frames' || k === 'coherent'), [['frames', 5], ['coherent', true]]);
});

test('the executable: help and version on stdout with exit 0, usage errors on stderr with exit 2', () => {
  const help = spawnCli('run', '--help', '--frames', 'abc');
  assert.deepEqual(help, { code: 0, stdout: `${commandHelp(COMMANDS[0]!)}\n`, stderr: '' });
  assert.deepEqual(spawnCli('help', 'device'), { code: 0, stdout: `${commandHelp(COMMANDS.find((c) => c.name === 'device')!)}\n`, stderr: '' });
  assert.deepEqual(spawnCli('--version'), { code: 0, stdout: `${VERSION}\n`, stderr: '' });
  assertUsageError(spawnCli('device', '--port', '1k'), /^vgpu-dirty device: --port must be an integer >= 0 and <= 65535, got '1k'/, 'device --port 1k');
  assertUsageError(spawnCli('run', '--frames', '-1'), /^vgpu-dirty run: --frames must be an integer >= 0 and <= 1000000, got '-1'/, 'run --frames -1');
});

const SPEC: CommandSpec = {
  name: 'x',
  summary: 'a test command',
  description: 'Test.',
  positionals: [{ name: 'file', description: 'a file' }],
  options: [
    { name: 'count', type: 'int', min: 1, max: 10, default: 3, description: 'a count' },
    { name: 'size', type: 'size', description: 'a size' },
    { name: 'mode', type: 'string', choices: ['a', 'b'], description: 'a mode' },
    { name: 'quiet', type: 'flag', short: 'q', description: 'quiet' },
  ],
  run: () => 0,
};

test('parseCommandLine: --name value, --name=value, short flags, defaults, sizes, the last of a repeated option', () => {
  assert.deepEqual(parseCommandLine(SPEC, ['f.txt', '--count=7', '--size', '2k', '-q', '--mode', 'a', '--mode', 'b']), {
    help: false, values: { count: 7, size: 2048, quiet: true, mode: 'b' }, positionals: ['f.txt'],
  });
  assert.deepEqual(parseCommandLine(SPEC, []), { help: false, values: { count: 3 }, positionals: [] });
  assert.deepEqual(parseCommandLine(SPEC, ['--size', '1G']), { help: false, values: { count: 3, size: 2 ** 30 }, positionals: [] });
  assert.deepEqual(parseCommandLine(SPEC, ['-qh']), { help: true });
  assert.throws(() => parseCommandLine(SPEC, ['--size', '1.5m']), (e: unknown) => e instanceof UsageError && /--size must be a byte count/.test(e.message));
  assert.throws(() => parseCommandLine(SPEC, ['-q=1']), /-q \(--quiet\) takes no value|unknown option/);
  assert.throws(() => parseCommandLine(SPEC, ['--count', '11']), /--count must be an integer >= 1 and <= 10, got '11'/);
  assert.throws(() => parseCommandLine(SPEC, ['a', 'b']), /unexpected argument 'b'/);
});

test('commandHelp shows defaults, ranges and choices from the table', () => {
  const text = commandHelp(SPEC);
  assert.match(text, /^Usage: vgpu-dirty x <file> \[options\]$/m);
  assert.match(text, /^ {2}--count N {13}a count \(1\.\.10; default 3\)$/m);
  assert.match(text, /^ {2}--mode a\|b {12}a mode$/m);
  assert.match(text, /^ {2}-q, --quiet {11}quiet$/m);
  assert.match(text, /^ {2}-h, --help {12}show this help and exit$/m);
  assert.match(text, /^Arguments:\n {2}file {18}a file$/m);
});

test('every concrete command line in README.md and docs/ parses (the documents name no option the CLI lacks)', () => {
  const docs = ['README.md', ...readdirSync('docs').filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  let checked = 0;
  for (const file of docs) {
    for (const [, line] of readFileSync(file, 'utf8').matchAll(/`(?:npx )?vgpu-dirty ([^`]+)`/g)) {
      // Synopses with placeholders ([--token T], <url>, ID, …) are not command lines.
      if (/[[\]<>…|]|(?:^| )[A-Z][A-Z_.]*(?: |$)/.test(line!)) continue;
      const argv = line!.trim().split(/\s+/);
      const spec = COMMANDS.find((c) => c.name === argv[0]);
      if (spec === undefined) continue;
      assert.doesNotThrow(() => parseCommandLine(spec, argv.slice(1)), `${file}: vgpu-dirty ${line}`);
      checked++;
    }
  }
  assert.ok(checked >= 20, `${checked} command lines checked`);
});

test('Ctrl-C during a run with progress on stderr: one note, the final verification and the summary, exit 0', async () => {
  const child = spawn(process.execPath, [CLI, 'run', '--frames', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await new Promise((r) => setTimeout(r, 1500));
  child.kill('SIGINT');
  const code = await exited;
  clearTimeout(killer);
  assert.equal(code, 0, stderr);
  assert.match(stderr, /^stopping after this frame \(again to quit at once\)$/m);
  assert.match(stdout, /^coherency +OK$/m);
});
