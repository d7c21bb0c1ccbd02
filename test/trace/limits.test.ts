// What the reader accepts, a replay runs: traces that are valid but awkward (a device write
// before the driver's definition of its BO reached the device, more device-write records than
// one device message holds, other page sizes) replay; traces a replay could not run are refused
// by the reader as TraceErrors; the reader's memory stays within its documented limits whatever
// the file claims.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { MAX_BYTES_PER_PIXEL } from '../../device/layout.js';
import { DEFAULT_LIMITS, defaultSessionLimits } from '../../protocol/index.js';
import { MAX_VPN } from '../../src/core/pagetable.js';
import { DeviceWriteRun } from '../../src/trace/device-writes.js';
import { decodeTrace, encodeTrace, inspectTrace, LIMITS, replayTrace, TraceDecoder, TraceError, type TraceEvent } from '../../src/trace/index.js';

const PAGE = 4096;

function head(pageSize = PAGE, bytes = 4 * pageSize): TraceEvent[] {
  return [
    { type: 'start', pageSize, cpus: 1, processes: 1, description: 'limits' },
    { type: 'bo', bo: 1, size: bytes },
    { type: 'buffer', bo: 1, offset: 0, size: bytes },
  ];
}

const lit = (n: number, v: number) => ({ kind: 'literal' as const, bytes: new Uint8Array(n).fill(v) });

function isInvalid(pattern: RegExp) {
  return (e: unknown) => e instanceof TraceError && e.kind === 'invalid' && pattern.test(e.message);
}

test('a device write right after its BO is declared replays (the device has the BO first)', async () => {
  const r = await replayTrace(encodeTrace([...head(), { type: 'deviceWrite', bo: 1, offset: 0, data: lit(3, 1) }, { type: 'flush' }]), { strategy: 'pagetable' });
  assert.equal(r.coherent, true);
  assert.equal(r.counts.deviceWrites, 1);
  assert.equal(r.counts.flushErrors, 0);
});

test('a run of device-write records beyond the device\'s maxRanges is sent in batches and counted as one device write', { timeout: 60_000 }, async () => {
  const events = [...head(PAGE, 1 << 20), { type: 'flush' } as TraceEvent];
  const n = DEFAULT_LIMITS.maxRanges + 1;
  for (let i = 0; i < n; i++) events.push({ type: 'deviceWrite', bo: 1, offset: (i * 16) % (1 << 20), data: lit(1, i & 255) });
  events.push({ type: 'map', map: 0, process: 0, bo: 1, firstPage: 0, pages: 256, address: 0x100000, prot: 'rw' }, { type: 'read', cpu: 0, process: 0, address: 0x100000, length: 1 << 20 }, { type: 'flush' });
  const a = await replayTrace(encodeTrace(events), { strategy: 'pagetable' });
  const b = await replayTrace(encodeTrace(events), { strategy: 'pagetable' });
  assert.equal(a.coherent, true);
  assert.equal(a.counts.deviceWrites, 1);
  assert.equal(a.counts.flushErrors, 0);
  assert.deepEqual(b.counts, a.counts, 'the batching is deterministic');
});

test('DeviceWriteRun: batches keep within maxRanges and maxBytes, split large payloads, hold the bytes in order', async () => {
  const sent: Array<Array<[number, Uint8Array]>> = [];
  const run = new DeviceWriteRun(7, { maxRanges: 3, maxBytes: 132 }, async (bo, ranges) => {
    assert.equal(bo, 7);
    sent.push(ranges.map(([o, d]) => [o, d.slice()]));
  });
  const big = Uint8Array.from({ length: 250 }, (_, i) => i);
  await run.add(1000, big);
  for (let i = 0; i < 5; i++) await run.add(i, Uint8Array.of(i));
  assert.ok(sent.length >= 2, 'batches went out before the end');
  await run.end();
  for (const batch of sent) {
    assert.ok(batch.length <= 3);
    assert.ok(batch.reduce((s, [, d]) => s + d.length + 32, 0) <= 132);
  }
  const ranges = sent.flat();
  assert.deepEqual(Buffer.concat(ranges.filter(([o]) => o >= 1000).map(([, d]) => d)), Buffer.from(big));
  assert.deepEqual(ranges.filter(([o]) => o < 1000).map(([o, d]) => [o, d[0]]), [[0, 0], [1, 1], [2, 2], [3, 3], [4, 4]]);
});

test('other page sizes replay (the device is started with the trace\'s page size)', async () => {
  for (const ps of [512, 8192, 65536]) {
    const r = await replayTrace(encodeTrace([
      ...head(ps),
      { type: 'map', map: 0, process: 0, bo: 1, firstPage: 0, pages: 4, address: 16 * ps, prot: 'rw' },
      { type: 'write', cpu: 0, process: 0, address: 16 * ps + ps - 2, data: lit(8, 5) },
      { type: 'flush' },
    ]), { strategy: 'pagetable' });
    assert.equal(r.coherent, true, `page size ${ps}`);
    assert.equal(r.counts.pagesDirtied, 2, `page size ${ps}`);
  }
});

test('accesses the mapping\'s protection forbids are refused by the reader; protect lifts and sets it page by page', async () => {
  const map = (prot: 'none' | 'r' | 'rw'): TraceEvent => ({ type: 'map', map: 0, process: 0, bo: 1, firstPage: 0, pages: 4, address: 0x100000, prot });
  const write = (address: number): TraceEvent => ({ type: 'write', cpu: 0, process: 0, address, data: lit(8, 1) });
  const read: TraceEvent = { type: 'read', cpu: 0, process: 0, address: 0x100000, length: 8 };
  const boWrite: TraceEvent = { type: 'boWrite', cpu: 0, bo: 1, offset: 0, data: lit(8, 1) };
  const run = (events: TraceEvent[]) => replayTrace(encodeTrace([...head(), ...events, { type: 'flush' }]), { strategy: 'pagetable' });
  await assert.rejects(run([map('r'), write(0x100000)]), isInvalid(/record 4\).*mapping 0 does not allow writing/));
  await assert.rejects(run([map('none'), read]), isInvalid(/mapping 0 does not allow reading/));
  await assert.rejects(run([map('r'), boWrite]), isInvalid(/no mapping of BO 1 is writable/));
  const split: TraceEvent = { type: 'protect', map: 0, firstPage: 1, pages: 2, prot: 'r' };
  await assert.rejects(run([map('rw'), split, write(0x100000 + PAGE - 4)]), isInvalid(/does not allow writing/), 'a write that runs into a read-only page');
  const ok = await run([map('rw'), split, write(0x100000), write(0x100000 + 3 * PAGE), read, { type: 'protect', map: 0, firstPage: 0, pages: 4, prot: 'rw' }, write(0x100000 + PAGE), boWrite]);
  assert.equal(ok.coherent, true);
  // A BO write goes through a mapping that allows it, when another covering one does not.
  const two = await run([map('r'), { type: 'map', map: 1, process: 0, bo: 1, firstPage: 0, pages: 4, address: 0x200000, prot: 'rw' }, boWrite, read]);
  assert.equal(two.coherent, true);
});

test('the reader\'s limits are the replay\'s: address space, bytes per pixel, BO count and bytes in whole pages, surfaces', async () => {
  assert.equal(LIMITS.addressSpacePages, MAX_VPN);
  assert.equal(LIMITS.maxBytesPerPixel, MAX_BYTES_PER_PIXEL);
  const session = defaultSessionLimits(DEFAULT_LIMITS);
  assert.equal(LIMITS.maxBos, session.maxSessionBos);
  assert.equal(LIMITS.maxSurfaces, session.maxSessionSurfaces);
  assert.ok(LIMITS.maxBoBytes <= session.maxSessionBytes && LIMITS.maxBoBytes <= DEFAULT_LIMITS.maxBoSize);
  const top = LIMITS.addressSpacePages * PAGE;
  const mapAt = (address: number): TraceEvent => ({ type: 'map', map: 0, process: 0, bo: 1, firstPage: 0, pages: 4, address, prot: 'rw' });
  await assert.rejects(inspectTrace(encodeTrace([...head(), mapAt(top - 2 * PAGE)])), isInvalid(/beyond the address space/));
  const last = await replayTrace(encodeTrace([...head(), mapAt(top - 4 * PAGE), { type: 'write', cpu: 0, process: 0, address: top - 8, data: lit(8, 1) }, { type: 'flush' }]), { strategy: 'pagetable' });
  assert.equal(last.coherent, true, 'the last pages of the address space replay');
  const surface = (bpp: number): TraceEvent => ({ type: 'surface', bo: 1, offset: 0, width: 10, height: 10, bytesPerPixel: bpp, rowPitch: 10 * bpp });
  await assert.rejects(inspectTrace(encodeTrace([...head(PAGE, 16 * PAGE), surface(17)])), isInvalid(/bytes per pixel outside \[1, 16\]/));
  assert.equal((await replayTrace(encodeTrace([...head(PAGE, 16 * PAGE), surface(16), { type: 'flush' }]), { strategy: 'pagetable' })).coherent, true);
  const start: TraceEvent = { type: 'start', pageSize: PAGE, cpus: 1, processes: 1, description: '' };
  const tinyBos = (n: number) => [start, ...Array.from({ length: n }, (_, i): TraceEvent => ({ type: 'bo', bo: i, size: 1 }))];
  await assert.rejects(inspectTrace(encodeTrace(tinyBos(LIMITS.maxBos + 1))), isInvalid(/more than 1024 BOs/));
  const many = await replayTrace(encodeTrace([...tinyBos(LIMITS.maxBos), { type: 'flush' }]), { strategy: 'pagetable' });
  assert.equal(many.coherent, true, 'as many one-byte BOs as the limit allows replay');
  assert.equal(many.trace.boBytes, LIMITS.maxBos * PAGE, 'BO bytes count whole pages');
  const bigBos = [start, { type: 'bo', bo: 0, size: LIMITS.maxBoBytes - PAGE + 1 }, { type: 'bo', bo: 1, size: PAGE }] as TraceEvent[];
  await assert.rejects(inspectTrace(encodeTrace(bigBos)), isInvalid(/exceed 268435456/));
  const surfaces: TraceEvent[] = [start, { type: 'bo', bo: 0, size: PAGE }, ...Array.from({ length: LIMITS.maxSurfaces + 1 }, (): TraceEvent => ({ type: 'surface', bo: 0, offset: 0, width: 1, height: 1, bytesPerPixel: 4, rowPitch: 4 }))];
  await assert.rejects(inspectTrace(encodeTrace(surfaces)), isInvalid(/more than 1024 surfaces/));
});

test('blobs stay compact: a tiny file of huge random blobs costs no memory; the blob table has a byte budget', () => {
  const events: TraceEvent[] = [{ type: 'start', pageSize: PAGE, cpus: 1, processes: 1, description: 'blobs' }];
  for (let i = 0; i < 32; i++) events.push({ type: 'blob', id: i, data: { kind: 'random', length: LIMITS.maxDataBytes, seed: 1 + i } });
  const before = process.memoryUsage().arrayBuffers;
  const d = decodeTrace(encodeTrace(events));
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.equal(d.decoder.blobs.size, 32);
  assert.ok(grown < 64 << 20, `decoding 32 blobs of 16 MiB kept ${grown} bytes (must stay compact)`);
  // Literal bytes count in full: five of 16 MiB exceed the 64 MiB budget.
  const literal: TraceEvent[] = [events[0]!];
  for (let i = 0; i < 5; i++) literal.push({ type: 'blob', id: i % 5, data: lit(LIMITS.maxDataBytes, i) });
  // (Pushed whole: the test is about the budget, not about chunking.)
  assert.throws(() => new TraceDecoder().push(encodeTrace(literal)), isInvalid(/record 5\).*blob table.*maxBlobTableBytes/));
  // Redefining an id frees what it held.
  const reused = new TraceDecoder();
  reused.push(encodeTrace(literal.map((e) => (e.type === 'blob' ? { ...e, id: 0 } : e))));
  assert.equal(reused.blobs.size, 1);
  assert.equal(reused.finish().records, 6);
});

test('a gzip-compressed trace in memory inflates to at most maxInflatedBytes', async () => {
  const bomb = gzipSync(new Uint8Array(LIMITS.maxInflatedBytes + 1), { level: 1 });
  assert.ok(bomb.length < 2 << 20);
  await assert.rejects(replayTrace(bomb), isInvalid(/inflates to more than 268435456 bytes \(maxInflatedBytes\)/));
});

test('think time sleeps at most maxThinkMicros, and the replay\'s signal ends a sleep at once', { timeout: 30_000 }, async () => {
  const events: TraceEvent[] = [...head(), { type: 'flush' }, { type: 'think', micros: 3_000_000_000 }, { type: 'flush' }];
  const stop = new AbortController();
  const t0 = performance.now();
  setTimeout(() => stop.abort(), 200);
  const r = await replayTrace(encodeTrace(events), { strategy: 'pagetable', realtime: true, signal: stop.signal });
  assert.ok(performance.now() - t0 < 8_000, 'the sleep ended with the signal');
  assert.equal(r.counts.frames, 1, 'the replay stopped after the think record');
  assert.equal(r.coherent, true);
  assert.equal(LIMITS.maxThinkMicros, 10_000_000);
});
