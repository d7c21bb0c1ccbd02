import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { FEATURES } from '../../protocol/index.js';
import { WireClient } from '../../src/conformance/index.js';

const CLI = 'dist/src/cli/main.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts the CLI; resolves `listening` with the first stdout line and `done` at exit. */
function start(args: string[]): { listening: Promise<string>; done: Promise<Run>; kill(sig: NodeJS.Signals): void } {
  const child = spawn(process.execPath, [CLI, 'device', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let onLine: (line: string) => void = () => {};
  const listening = new Promise<string>((resolve) => (onLine = resolve));
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (stdout.includes('\n')) onLine(stdout.split('\n')[0]!);
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const done = new Promise<Run>((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(killer);
      onLine('');
      resolve({ code, stdout, stderr });
    }),
  );
  return { listening, done, kill: (sig) => child.kill(sig) };
}

describe('vgpu-dirty device (CLI)', () => {
  it('prints exactly one listening line, serves, and shuts down cleanly on SIGTERM', async () => {
    const run = start(['--port', '0', '--token', 't', '--max-bo-size', '1m']);
    const line = await run.listening;
    const m = /^listening on (ws:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
    assert.ok(m, `first line: ${JSON.stringify(line)}`);
    assert.notEqual(Number(m[2]), 0);
    const c = await WireClient.session(m[1]!, { token: 't' });
    assert.equal(c.welcome!.maxBoSize, 1024 * 1024);
    assert.equal((await c.fence()).ok, true);
    run.kill('SIGTERM');
    assert.equal((await c.waitClosed()).code, 1001);
    const r = await run.done;
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `${line}\n`);
    assert.match(r.stderr, /\[device\] SIGTERM: shutting down/);
  });

  it('shuts down on SIGINT too', async () => {
    const run = start(['--quiet']);
    assert.match(await run.listening, /^listening on ws:\/\/127\.0\.0\.1:\d+$/);
    run.kill('SIGINT');
    const r = await run.done;
    assert.deepEqual([r.code, r.stderr], [0, '']);
  });

  it('arms scripted faults from flags', async () => {
    const run = start(['--quiet', '--fail-nth', '2', '--fence-delay', '1']);
    const url = (await run.listening).replace('listening on ', '');
    const c = await WireClient.session(url);
    c.cmd({ op: 'defineBo', bo: 1, size: 8 });
    const failed = c.cmd({ op: 'defineBo', bo: 2, size: 8 });
    assert.deepEqual(await c.expect('error'), { op: 'error', code: 'injected', message: 'injected failure of command 2', seq: failed });
    assert.deepEqual(await c.fence(3), { op: 'signaled', seq: c.seq, fence: 3, ok: false, errors: 1, code: 'injected', message: 'injected failure of command 2', errSeq: failed });
    run.kill('SIGTERM');
    assert.equal((await run.done).code, 0);
  });

  it('exits 2 with a clear message on bad arguments', async () => {
    for (const [args, text] of [
      [['--port', 'eighty'], /--port must be an integer >= 0 and <= 65535, got 'eighty'/],
      [['--port', '1k'], /--port must be an integer >= 0 and <= 65535, got '1k'/],
      [['--port', '-1'], /--port must be an integer >= 0 and <= 65535, got '-1'/],
      [['--frobnicate'], /unknown option --frobnicate/],
      [['--port', '70000'], /--port must be an integer >= 0 and <= 65535, got '70000'/],
      [['--max-message-size', '10'], /--max-message-size must be a byte count \(an integer, optionally with k, m or g\) >= 1024/],
      [['extra'], /unexpected argument 'extra'/],
      [['--fail-nth', '0'], /--fail-nth must be an integer >= 1/],
      [['--token', 'x', '--control-token', 'x'], /controlToken must differ from token/],
      [['--features', 'surfaces,warp'], /unknown feature 'warp'/],
      [['--idle-timeout', 'soon'], /--idle-timeout must be an integer >= 0 and <= 86400000, got 'soon'/],
    ] as const) {
      const r = await start([...args]).done;
      assert.equal(r.code, 2, args.join(' '));
      assert.equal(r.stdout, '');
      assert.match(r.stderr, text);
    }
  });

  it('offers the features, shares, idle timeout and control token it is given', async () => {
    const run = start(['--quiet', '--features', 'surfaces,stats', '--control-token', 'ctl', '--max-sessions', '3', '--max-session-bytes', '1m', '--idle-timeout', '0']);
    const url = (await run.listening).replace('listening on ', '');
    const c = await WireClient.session(url);
    const ctl = await WireClient.session(url, { role: 'control', token: 'ctl' });
    assert.deepEqual(c.welcome!.features, ['surfaces', 'stats', 'control']);
    assert.deepEqual([c.welcome!.maxSessions, c.welcome!.maxSessionBytes, c.welcome!.idleTimeout], [3, 1024 * 1024, 0]);
    const digest = c.cmd({ op: 'digest', bo: 1, offset: 0, length: 0 });
    assert.equal((await c.expect('error', digest)).code, 'unknown_op');
    await ctl.close();
    run.kill('SIGTERM');
    assert.equal((await run.done).code, 0);
  });

  it('prints usage on --help', async () => {
    const r = await start(['--help']).done;
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: vgpu-dirty device \[options\]/);
    assert.match(r.stdout, /--max-total-bytes SIZE/);
    // The default named in --help is the device's: every feature (the help once listed six of eight).
    const help = r.stdout.replace(/\s+/g, ' ');
    for (const f of FEATURES) assert.ok(new RegExp(`default all of [a-zA-Z,]*\\b${f}\\b`).test(help), `--features default names ${f}`);
  });
});
