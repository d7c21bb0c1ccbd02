import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { runMainJob, phaseOf } from '../../src/index.js';
import { startDevice } from '../../device/index.js';

const CLI = 'dist/src/cli/main.js';

test('vgpu-dirty run --json prints one object with the documented keys, coherent, with method switches', () => {
  const r = spawnSync(process.execPath, [CLI, 'run', '--frames', '200', '--json'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  const j = JSON.parse(lines[0]!) as Record<string, unknown>;
  for (const k of ['frames', 'pagesDirtied', 'pagesSent', 'bytesOnWire', 'fences', 'fenceLatencyMs', 'methodSwitches', 'faults', 'tlbFlushes', 'ipis', 'coherent', 'flushErrors', 'deviceWrites', 'readbacks']) {
    assert.ok(k in j, `missing key ${k}`);
  }
  assert.equal(j['frames'], 200);
  assert.equal(j['fences'], 200);
  assert.equal(j['coherent'], true);
  assert.ok((j['methodSwitches'] as number) >= 2, 'busy then idle phases switch methods both ways');
  const lat = j['fenceLatencyMs'] as { p50: number; p99: number };
  assert.ok(lat.p50 > 0 && lat.p99 >= lat.p50);
  // The default encoding sends only the bytes that changed: some bytes, at most the pages sent plus framing.
  assert.ok((j['bytesOnWire'] as number) > 0 && (j['bytesOnWire'] as number) < (j['pagesSent'] as number) * 4096 + 200 * 256);
  assert.equal(j['deviceWrites'], 10, 'the embedded device renders every 20 frames');
  assert.ok((j['readbacks'] as number) >= 1);
  assert.equal(j['flushErrors'], 0);
});

test('device-side writes through a control connection: CPU accesses wait for the readback, the run stays coherent under every strategy', async () => {
  const dev = await startDevice({ port: 0, controlToken: 'ctl' });
  try {
    for (const strategy of ['adaptive', 'pagetable', 'mkwrite'] as const) {
      const r = await runMainJob({ deviceUrl: dev.url, control: true, controlToken: 'ctl', frames: 40, hz: 0, gpuEvery: 4, verifyEvery: 20, strategy });
      assert.equal(r.coherent, true, strategy);
      assert.equal(r.deviceWrites, 10, strategy);
      assert.ok(r.readbacks >= 1, `${strategy}: ${r.readbacks} readbacks`);
    }
  } finally {
    await dev.close();
  }
});

test('a device fault is a flush error, not incoherence: the run recovers by itself and reports both apart', async () => {
  const dev = await startDevice({ port: 0 });
  try {
    dev.faults.failNth(30);
    const r = await runMainJob({ deviceUrl: dev.url, frames: 40, hz: 0, verifyEvery: 20 });
    assert.ok(r.flushErrors >= 1, `${r.flushErrors} flush errors`);
    assert.equal(r.coherent, true);
    assert.equal(r.differingPages, 0);
  } finally {
    await dev.close();
  }
});

test('an unreachable device or a wrong token ends the run with exit 1 and one line on stderr', async () => {
  const dev = await startDevice({ port: 0, token: 'right' });
  try {
    for (const [args, want] of [
      [['--device', dev.url, '--token', 'wrong'], /refused the connection: bad_token/],
      [['--device', 'ws://127.0.0.1:1', '--connect-timeout', '300'], /no device session .* within 300 ms/],
    ] as const) {
      const r = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [CLI, 'run', '--frames', '5', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => child.kill(), 15_000);
        child.on('close', (status) => (clearTimeout(timer), resolve({ status, stderr })));
      });
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, want);
    }
  } finally {
    await dev.close();
  }
});

test('run is the default command also when the first argument is one of its options', () => {
  const r = spawnSync(process.execPath, [CLI, '--frames', '20', '--json'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { frames: number; coherent: boolean };
  assert.deepEqual([j.frames, j.coherent], [20, true]);
  const v = spawnSync(process.execPath, [CLI, '--version'], { encoding: 'utf8', timeout: 10_000 });
  assert.match(v.stdout.trim(), /^\d+\.\d+\.\d+$/);
});

test('bad arguments exit 2 with a clear message', () => {
  for (const args of [['run', '--frames', '-1'], ['run', '--strategy', 'magic'], ['run', '--device', 'http://x'], ['run', '--frames', '1', '--seconds', '1'], ['run', '--device', 'ws://127.0.0.1:1', '--control'], ['bogus']]) {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^vgpu-dirty( run)?: /);
  }
});

test('every strategy keeps the device coherent; sending the whole BO every frame costs far more bytes', async () => {
  const bytes: Record<string, number> = {};
  for (const strategy of ['adaptive', 'pagetable', 'mkwrite', 'full'] as const) {
    // Whole dirty pieces (encoding raw): with deltas, 'full' would send as little as the others.
    const r = await runMainJob({ frames: 40, hz: 0, strategy, verifyEvery: 20, writeback: { encoding: 'raw' } });
    assert.equal(r.coherent, true, strategy);
    bytes[strategy] = r.bytesOnWire;
    if (strategy === 'full') {
      // Every round sends both BOs whole: 2025 framebuffer pages + 1024 vertex-buffer pages.
      assert.ok(r.pagesSent >= 3049 && r.pagesSent % 3049 === 0, `full sent ${r.pagesSent} pages`);
    } else {
      assert.ok(r.pagesSent > 0 && r.pagesSent <= r.pagesDirtied + 3049, `${strategy} sent ${r.pagesSent} of ${r.pagesDirtied} dirtied`);
    }
  }
  // 40 busy frames: the band and vertex writes dirty about half of what 'full' sends.
  assert.ok(bytes['full']! > 1.5 * bytes['adaptive']!, JSON.stringify(bytes));
});

test('the scene cycles busy, idle, sparse, idle every 180 frames', () => {
  assert.deepEqual([0, 59, 60, 89, 90, 149, 150, 179, 180].map(phaseOf), ['busy', 'busy', 'idle', 'idle', 'sparse', 'sparse', 'idle', 'idle', 'busy']);
});
