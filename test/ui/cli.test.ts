import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeViewer } from '../../src/ui/index.js';

const CLI = 'dist/src/cli/main.js';

/** A running `vgpu-dirty run …` whose stderr is collected; waits are bounded. */
function start(args: string[]) {
  const child: ChildProcess = spawn(process.execPath, [CLI, 'run', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child, exited,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    async waitFor(re: RegExp, ms = 20_000): Promise<RegExpExecArray> {
      const deadline = Date.now() + ms;
      for (;;) {
        const m = re.exec(stderr);
        if (m) return m;
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no ${re} on stderr within ${ms} ms:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async exit(ms = 30_000): Promise<number | null> {
      const timer = setTimeout(() => child.kill('SIGKILL'), ms);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

test('dashboard and report options are checked before anything runs', () => {
  for (const [args, want] of [
    [['--ui-port', '8080'], /--ui-port needs --ui/],
    [['--ui', '--ui-port', '70000'], /--ui-port must be an integer/],
    [['--report', '/nonexistent-dir/r.html'], /--report: cannot write into \/nonexistent-dir/],
    [['--frames', '-1'], /--frames must be an integer >= 0/],
  ] as const) {
    const r = spawnSync(process.execPath, [CLI, 'run', ...args], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, want);
  }
});

test('run --ui --frames 0 runs until Ctrl-C, then verifies, prints the summary and writes the report', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-ui-'));
  const report = join(dir, 'run.html');
  const run = start(['--ui', '--frames', '0', '--json', '--report', report]);
  let viewer: NodeViewer | null = null;
  try {
    const url = (await run.waitFor(/dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/))[1]!;
    viewer = await NodeViewer.connect(url);
    await viewer.until((v) => (v.rows['frame']?.length ?? 0) >= 20, '20 frames on the dashboard', 30_000);
    run.child.kill('SIGINT');
    assert.equal(await run.exit(), 0, run.stderr);
    assert.match(run.stderr, /stopping after this frame/);
    const summary = JSON.parse(run.stdout) as { frames: number; coherent: boolean };
    assert.ok(summary.frames >= 20);
    assert.equal(summary.coherent, true);
    assert.equal(viewer.status?.summary?.frames, summary.frames, 'the dashboard saw the end before the process exited');
    const html = readFileSync(report, 'utf8');
    const data = JSON.parse(/<script type="application\/json" id="run-data">(.*?)<\/script>/s.exec(html)![1]!) as { status: { frame: number } };
    assert.equal(data.status.frame, summary.frames);
    assert.match(run.stderr, new RegExp(`report: ${report}`));
  } finally {
    await viewer?.close();
    run.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a run that ends by itself keeps the dashboard up with its final state until SIGTERM', async () => {
  const run = start(['--ui', '--frames', '30']);
  let viewer: NodeViewer | null = null;
  try {
    const url = (await run.waitFor(/dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/))[1]!;
    await run.waitFor(/keeps its final state/, 30_000);
    assert.match(run.stdout, /coherency\s+OK/);
    viewer = await NodeViewer.connect(url);
    await viewer.until((v) => v.status?.summary != null, 'the final state');
    assert.equal(viewer.rows['frame']?.length, 30, 'a viewer that comes late gets every row');
    run.child.kill('SIGTERM');
    assert.equal(await run.exit(10_000), 0);
  } finally {
    await viewer?.close();
    run.child.kill('SIGKILL');
  }
});
