// Record → replay: a replay's counts are the same every time, also when the device's timing
// changes; they agree with the recorded run where they must; bad traces never start a replay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runMainJob } from '../../src/index.js';
import { encodeTrace, replayTrace, TraceError, type TraceEvent, TraceFileWriter, TraceRecorder } from '../../src/trace/index.js';

async function recordMainJob(file: string, frames: number): Promise<Awaited<ReturnType<typeof runMainJob>>> {
  const writer = new TraceFileWriter(file);
  const report = await runMainJob({ frames, hz: 0, gpuEvery: 10, verifyEvery: 20, fb: { width: 960, height: 540 }, tap: new TraceRecorder(writer) });
  await writer.close();
  return report;
}

test('replaying a recorded main job gives identical counts every time, under each strategy, whatever the device timing', { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-trace-'));
  try {
    const file = join(dir, 'scene.vgtrace.gz');
    // 66 frames: busy (0–59), then idle: the adaptive strategy switches both ways.
    const recorded = await recordMainJob(file, 66);
    assert.equal(recorded.coherent, true);
    for (const strategy of ['adaptive', 'mkwrite']) {
      const first = await replayTrace(file, { strategy });
      const again = strategy === 'adaptive' ? await replayTrace(file, { strategy }) : null;
      // A slow link and fence latency change when replies come, not what is counted.
      const slow = await replayTrace(file, { strategy, fenceLatency: 3, bandwidth: 200 * 1024 * 1024 });
      assert.equal(first.coherent, true, strategy);
      if (again !== null) assert.deepEqual(again.counts, first.counts, `${strategy}: a second replay`);
      assert.deepEqual(slow.counts, first.counts, `${strategy}: a replay against a slower device`);
      assert.equal(first.counts.frames, 66);
      assert.equal(first.counts.fences, 66);
      assert.equal(first.counts.pagesDirtied, recorded.pagesDirtied, `${strategy}: the CPUs dirty the pages the recorded run dirtied`);
      assert.equal(first.counts.deviceWrites, recorded.deviceWrites, `${strategy}: one device write per GPU actor render`);
      assert.equal(first.counts.verifications, 5, 'four in the trace (after frames 20, 40, 60 and at the end of the recording), one after the replay');
      assert.ok(first.counts.readbacks >= 1 && first.counts.faults > 0);
      if (strategy === 'adaptive') assert.ok(first.counts.methodSwitches >= 2, `adaptive switches both ways (${first.counts.methodSwitches})`);
      else assert.equal(first.counts.methodSwitches, 0);
      // Timing is reported, apart from the counts.
      assert.ok(first.timing.fenceLatencyMs.p99 >= first.timing.fenceLatencyMs.p50 && first.timing.cpuMsPerFrame > 0);
    }
    // The trace file is the same input in memory: same counts.
    const fromBytes = await replayTrace(readFileSync(file), { strategy: 'mkwrite', frames: 12 });
    const fromFile = await replayTrace(file, { strategy: 'mkwrite', frames: 12 });
    assert.equal(fromFile.counts.frames, 12);
    assert.deepEqual(fromBytes.counts, fromFile.counts);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('map, unmap, protect, reads and BO writes replay, and protection holds: a write to a read-only page is refused as invalid', async () => {
  const PAGE = 4096;
  const base: TraceEvent[] = [
    { type: 'start', pageSize: PAGE, cpus: 2, processes: 2, description: 'ops' },
    { type: 'bo', bo: 5, size: 8 * PAGE },
    { type: 'buffer', bo: 5, offset: 0, size: 8 * PAGE },
    { type: 'map', map: 0, process: 0, bo: 5, firstPage: 0, pages: 8, address: 0x400000, prot: 'rw' },
    { type: 'map', map: 1, process: 1, bo: 5, firstPage: 4, pages: 4, address: 0x800000, prot: 'rw' },
    { type: 'write', cpu: 0, process: 0, address: 0x400000 + 10, data: { kind: 'random', length: 3 * PAGE, seed: 9 } },
    { type: 'boWrite', cpu: 1, bo: 5, offset: 6 * PAGE, data: { kind: 'runs', unitSize: 1, counts: [PAGE], units: Uint8Array.of(7) } },
    { type: 'flush' },
    { type: 'protect', map: 1, firstPage: 0, pages: 2, prot: 'r' },
    { type: 'read', cpu: 1, process: 1, address: 0x800000, length: 2 * PAGE },
    { type: 'unmap', map: 0 },
    { type: 'write', cpu: 1, process: 1, address: 0x800000 + 3 * PAGE, data: { kind: 'literal', bytes: Uint8Array.of(1, 2) } },
    { type: 'deviceWrite', bo: 5, offset: 5 * PAGE, data: { kind: 'random', length: 100, seed: 3 } },
    { type: 'flush' },
    { type: 'verify' },
  ];
  const r = await replayTrace(encodeTrace(base), { strategy: 'pagetable' });
  assert.equal(r.coherent, true);
  assert.equal(r.counts.frames, 2);
  assert.equal(r.counts.pagesDirtied, 4 + 1 + 1, 'pages 0–3 and 6 in the first frame, page 7 in the second');
  assert.equal(r.counts.deviceWrites, 1);
  const readOnly = [...base.slice(0, -3), { type: 'write', cpu: 1, process: 1, address: 0x800000, data: { kind: 'literal', bytes: Uint8Array.of(1) } } as TraceEvent];
  // A write the replay would fault on is refused by the reader before anything replays (docs/trace.md).
  await assert.rejects(replayTrace(encodeTrace(readOnly)), (e: unknown) => e instanceof TraceError && e.kind === 'invalid' && /mapping 1 does not allow writing/.test(e.message));
});

test('a bad trace is refused before a replay starts: a TraceError that says where', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-trace-'));
  try {
    const good = encodeTrace([
      { type: 'start', pageSize: 4096, cpus: 1, processes: 1, description: '' },
      { type: 'bo', bo: 1, size: 4096 },
      { type: 'flush' },
    ]);
    const cut = join(dir, 'cut.vgtrace');
    writeFileSync(cut, good.subarray(0, good.length - 1));
    await assert.rejects(replayTrace(cut), (e: unknown) => e instanceof TraceError && e.kind === 'truncated');
    await assert.rejects(replayTrace(Uint8Array.of(1, 2, 3)), (e: unknown) => e instanceof TraceError && e.kind === 'bad-magic');
    await assert.rejects(replayTrace(good, { strategy: 'nonsense' }), /unknown strategy 'nonsense'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
