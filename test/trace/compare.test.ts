// vgpu-dirty compare and run --trace / --record, as a user runs them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { compareStrategies, comparisonTable, decodeTrace, encodeTrace, renderComparison, shippedTraces, type TraceEvent } from '../../src/trace/index.js';

const CLI = 'dist/src/cli/main.js';

function cli(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
}

/** A small trace: a 64-page buffer, eight frames of sparse writes then full rewrites. */
function small(): Uint8Array {
  const PAGE = 4096;
  const events: TraceEvent[] = [
    { type: 'start', pageSize: PAGE, cpus: 2, processes: 1, description: 'small' },
    { type: 'bo', bo: 1, size: 64 * PAGE },
    { type: 'buffer', bo: 1, offset: 0, size: 64 * PAGE },
    { type: 'map', map: 0, process: 0, bo: 1, firstPage: 0, pages: 64, address: 0x100000, prot: 'rw' },
  ];
  for (let f = 0; f < 8; f++) {
    const pages = f < 4 ? [f, 40 + f] : Array.from({ length: 64 }, (_, i) => i);
    for (const p of pages) events.push({ type: 'write', cpu: p % 2, process: 0, address: 0x100000 + p * PAGE + 8, data: { kind: 'random', length: 64, seed: f * 100 + p + 1 } });
    events.push({ type: 'flush' });
  }
  return gzipSync(encodeTrace(events));
}

test('compare prints one table for every shipped trace', { timeout: 300_000 }, () => {
  const names = shippedTraces();
  assert.deepEqual(names, ['database', 'scene-1920x1080', 'scene-960x540', 'video']);
  for (const name of names) {
    const r = cli(['compare', '--trace', name, '--strategy', 'pagetable']);
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, new RegExp(`^trace .*${name}\\.vgtrace\\.gz: .* — \\d+ frames`));
    assert.match(lines[2]!, /^strategy\s+bytes on the wire\s+pages sent \/ dirtied\s+faults\s+switches\s+scan ms\/frame\s+CPU ms\/frame\s+fence p50 \/ p99 ms\s+coherent$/);
    assert.match(lines[4]!, /^pagetable\s+[\d.]+ MiB\s+\d+ \/ \d+\s+\d+\s+0\s+[\d.]+\s+[\d.]+\s+[\d.]+ \/ [\d.]+\s+yes$/, `${name}: ${lines[4]}`);
  }
});

test('compareStrategies: one replay per strategy; full sends every page every frame, the trackers only what was written; --json and --report carry the same', { timeout: 120_000 }, async () => {
  const c = await compareStrategies(small(), ['adaptive', 'pagetable', 'mkwrite', 'full'], { perFrame: true });
  const by = new Map(c.results.map((r) => [r.strategy, r]));
  assert.equal(c.trace.frames, 8);
  for (const r of c.results) {
    assert.equal(r.coherent, true, r.strategy);
    assert.equal(r.counts.pagesDirtied, 4 * 2 + 4 * 64, r.strategy);
    assert.equal(r.perFrame!.pagesSent.length, 8);
  }
  assert.equal(by.get('full')!.counts.pagesSent, 9 * 64, 'full: the whole BO every round (8 frames and the final verification)');
  assert.equal(by.get('pagetable')!.counts.pagesSent, 4 * 2 + 4 * 64);
  assert.equal(by.get('pagetable')!.counts.methodSwitches, 0);
  assert.ok(by.get('mkwrite')!.counts.faults > by.get('pagetable')!.counts.faults, 'mkwrite faults on every first write after a scan');
  const lines = comparisonTable(c);
  assert.equal(lines.filter((l) => /^(adaptive|pagetable|mkwrite|full)\s/.test(l)).length, 4);
  const html = renderComparison(c);
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
  assert.doesNotMatch(html, /<script src=|<link rel="stylesheet" href=/, 'nothing is loaded from elsewhere');
  for (const s of ['adaptive', 'pagetable', 'mkwrite', 'full']) assert.match(html, new RegExp(`<td>${s}</td>`));
  const data = JSON.parse(html.slice(html.indexOf('id="compare-data">') + 18, html.indexOf('</script>', html.indexOf('id="compare-data">')))) as { charts: Array<{ series: Array<{ label: string; values: number[] }> }> };
  assert.deepEqual(data.charts[1]!.series.find((s) => s.label === 'full')!.values, Array(8).fill(64), 'pages sent per frame, charted');
});

test('compare --json and --report from the command line; bad input exits with one line', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-compare-'));
  try {
    const file = join(dir, 'small.vgtrace.gz');
    writeFileSync(file, small());
    const report = join(dir, 'cmp.html');
    const r = cli(['compare', '--trace', file, '--strategy', 'mkwrite', '--strategy', 'full', '--json', '--report', report]);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { trace: { frames: number }; results: Array<{ strategy: string; coherent: boolean; counts: { pagesSent: number }; timing: object; perFrame?: unknown }> };
    assert.equal(j.trace.frames, 8);
    assert.deepEqual(j.results.map((x) => x.strategy), ['mkwrite', 'full']);
    assert.equal(j.results[1]!.counts.pagesSent, 9 * 64);
    assert.ok(j.results.every((x) => x.coherent && 'timing' in x && !('perFrame' in x)));
    assert.match(readFileSync(report, 'utf8'), /<title>vgpu-dirty compare: small<\/title>/);

    // A strategy written outside src/, loaded by module path.
    const own = cli(['compare', '--trace', file, '--strategy', './examples/custom-strategy/chunked-tracker.mjs', '--strategy', 'pagetable', '--json']);
    assert.equal(own.status, 0, own.stderr);
    const ownResults = (JSON.parse(own.stdout) as { results: Array<{ strategy: string; coherent: boolean; counts: { pagesDirtied: number } }> }).results;
    assert.equal(ownResults.length, 2);
    assert.ok(ownResults.every((x) => x.coherent && x.counts.pagesDirtied === 4 * 2 + 4 * 64), JSON.stringify(ownResults));

    const corrupt = join(dir, 'corrupt.vgtrace');
    const bytes = decodeTrace(small()) && Uint8Array.from(encodeTrace([{ type: 'start', pageSize: 4096, cpus: 1, processes: 1, description: '' }, { type: 'flush' }]));
    bytes[bytes.length - 2] ^= 0xff;
    writeFileSync(corrupt, bytes);
    const bad = cli(['compare', '--trace', corrupt]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^vgpu-dirty: trace (corrupt|checksum) at byte \d+ \(record 2\): .*\n$/);
    assert.equal(cli(['compare', '--trace', file, '--strategy', 'nope']).status, 2);
    assert.equal(cli(['compare']).status, 2);
    assert.match(cli(['compare', '--trace', 'no-such-trace']).stderr, /no trace file 'no-such-trace' and no shipped trace of that name \(shipped: database, /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('run --record writes a trace of the main job; run --trace replays it with the same pages dirtied', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-record-'));
  try {
    const file = join(dir, 'run.vgtrace.gz');
    const rec = cli(['run', '--frames', '12', '--gpu-every', '5', '--record', file, '--json']);
    assert.equal(rec.status, 0, rec.stderr);
    const recorded = JSON.parse(rec.stdout) as { pagesDirtied: number; deviceWrites: number };
    const trace = decodeTrace(readFileSync(file));
    assert.equal(trace.events.filter((e) => e.type === 'flush').length, 12);
    const rep = cli(['run', '--trace', file, '--strategy', 'pagetable', '--json']);
    assert.equal(rep.status, 0, rep.stderr);
    const replayed = JSON.parse(rep.stdout) as { frames: number; pagesDirtied: number; deviceWrites: number; strategy: string; coherent: boolean };
    assert.equal(replayed.frames, 12);
    assert.equal(replayed.pagesDirtied, recorded.pagesDirtied);
    assert.equal(replayed.deviceWrites, recorded.deviceWrites);
    assert.equal(replayed.strategy, 'pagetable');
    assert.equal(replayed.coherent, true);
    const misuse = cli(['run', '--trace', file, '--frames', '3']);
    assert.equal(misuse.status, 2);
    assert.match(misuse.stderr, /--frames does not apply to --trace/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('run --trace refuses every option given that does not apply, also one given its default value; run --record that fails before the run leaves no file', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-trace-cli-'));
  try {
    const file = join(dir, 'small.vgtrace.gz');
    writeFileSync(file, small());
    for (const given of [['--cpus', '4'], ['--cpus', '8'], ['--memory', 'simulated']]) {
      const r = cli(['run', '--trace', file, ...given]);
      assert.equal(r.status, 2, given.join(' '));
      assert.match(r.stderr, new RegExp(`${given[0]} does not apply to --trace`));
    }
    const record = join(dir, 'never.vgtrace');
    const failed = cli(['run', '--record', record, '--device', 'ws://127.0.0.1:1', '--connect-timeout', '300']);
    assert.equal(failed.status, 1);
    assert.equal(existsSync(record), false, 'no trace file is left behind');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Run the CLI, send `signal` once stderr or stdout shows `ready`, and collect what it printed, how it ended and how long after the signal (ms). */
function interrupted(args: string[], ready: RegExp, signal: NodeJS.Signals): Promise<{ code: number | null; out: string; err: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let sent = false;
    let t0 = NaN;
    const poke = () => {
      if (!sent && ready.test(out + err)) {
        sent = true;
        t0 = performance.now();
        child.kill(signal);
      }
    };
    child.stdout.on('data', (d: Buffer) => ((out += d), poke()));
    child.stderr.on('data', (d: Buffer) => ((err += d), poke()));
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(guard);
      resolve({ code, out, err, ms: performance.now() - t0 });
    });
  });
}

test('Ctrl-C (SIGINT) and SIGTERM end run --trace cleanly in the middle of a long think time, with the final verification and the summary', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-trace-sig-'));
  try {
    const PAGE = 4096;
    const file = join(dir, 'think.vgtrace');
    writeFileSync(file, encodeTrace([
      { type: 'start', pageSize: PAGE, cpus: 1, processes: 1, description: 'think' },
      { type: 'bo', bo: 1, size: 2 * PAGE },
      { type: 'buffer', bo: 1, offset: 0, size: 2 * PAGE },
      { type: 'flush' },
      { type: 'think', micros: 3_000_000_000 },
      { type: 'flush' },
    ]));
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const r = await interrupted(['run', '--trace', file, '--json'], /think time: sleeping 10 s \(the trace asks 3000 s; one sleep is at most 10 s\)/, signal);
      assert.equal(r.code, 0, r.err);
      assert.ok(r.ms < 8_000, `${signal}: stopped ${Math.round(r.ms)} ms after the signal, before the (10 s) sleep ended`);
      const summary = JSON.parse(r.out) as { coherent: boolean; frames: number };
      assert.equal(summary.coherent, true, 'the summary follows the final verification');
      assert.equal(summary.frames, 1);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
