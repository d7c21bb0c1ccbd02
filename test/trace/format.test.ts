// The trace format: every record round-trips; payload kinds mean what docs/trace.md says;
// bad input of any shape is a TraceError that says where and what, never a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import {
  compactData, decodeTrace, encodeTrace, materialize, randomBytes, readTraceFile, TraceDecoder, TraceError, type TraceEvent, TraceFileWriter, TraceRecorder,
} from '../../src/trace/index.js';
import { propertySeed } from '../core/fixtures.js';

const PAGE = 4096;
const A = 0x200000;

/** One of every record, payloads of every kind. */
function everyRecord(): TraceEvent[] {
  return [
    { type: 'start', pageSize: PAGE, cpus: 2, processes: 2, description: 'every record — ünïcode' },
    { type: 'bo', bo: 7, size: 5 * PAGE + 100 },
    { type: 'surface', bo: 7, offset: 0, width: 16, height: 8, bytesPerPixel: 4, rowPitch: 64 },
    { type: 'buffer', bo: 7, offset: PAGE, size: 4 * PAGE },
    { type: 'map', map: 3, process: 1, bo: 7, firstPage: 1, pages: 5, address: A, prot: 'rw' },
    { type: 'blob', id: 65535, data: { kind: 'runs', unitSize: 4, counts: [3, 1], units: Uint8Array.of(1, 2, 3, 4, 9, 9, 9, 9) } },
    { type: 'write', cpu: 1, process: 1, address: A + 10, data: { kind: 'literal', bytes: Uint8Array.of(5, 6, 7) } },
    { type: 'write', cpu: 0, process: 1, address: A + PAGE - 2, data: { kind: 'blob', id: 65535 } },
    { type: 'read', cpu: 0, process: 1, address: A, length: 2 * PAGE },
    { type: 'deviceWrite', bo: 7, offset: 3, data: { kind: 'random', length: 10, seed: 0xffffffff } },
    { type: 'boWrite', cpu: 1, bo: 7, offset: 2 * PAGE, data: { kind: 'runs', unitSize: 1, counts: [300], units: Uint8Array.of(0x20) } },
    { type: 'protect', map: 3, firstPage: 1, pages: 2, prot: 'r' },
    { type: 'flush' },
    { type: 'think', micros: 2 ** 40 },
    { type: 'verify' },
    { type: 'unmap', map: 3 },
    { type: 'map', map: 3, process: 0, bo: 7, firstPage: 0, pages: 1, address: 2 ** 38, prot: 'none' },
  ];
}

/** Events as plain values (without what the reader attaches: a blob reference's payload, a BO write's mapping). */
function plain(events: TraceEvent[]): unknown[] {
  return events.map((e) => {
    const { via: _, ...rest } = e as TraceEvent & { via?: number };
    return 'data' in rest && rest.data.kind === 'blob' ? { ...rest, data: { kind: 'blob', id: rest.data.id } } : rest;
  });
}

test('every record and payload kind round-trips through the writer and the reader', () => {
  const events = everyRecord();
  const bytes = encodeTrace(events);
  assert.deepEqual(plain(decodeTrace(bytes).events), plain(events));
  assert.deepEqual(plain(decodeTrace(gzipSync(bytes)).events), plain(events), 'gzip is read transparently');
});

test('payloads: runs repeat units, random is the documented xorshift32 stream, a blob is its latest definition', () => {
  // Seed 1: first state 270369 = 0x42021 (docs/trace.md).
  assert.deepEqual([...randomBytes(1, 6)], [0x21, 0x20, 0x04, 0x00, 0x01, 0x06]); // second state 0x04080601
  const blobs = new Map();
  assert.deepEqual([...materialize({ kind: 'runs', unitSize: 2, counts: [2, 1], units: Uint8Array.of(1, 2, 7, 8) }, blobs)], [1, 2, 1, 2, 7, 8]);
  // A redefined blob id changes the records after it only.
  const events: TraceEvent[] = [
    { type: 'start', pageSize: PAGE, cpus: 1, processes: 1, description: '' },
    { type: 'bo', bo: 1, size: PAGE },
    { type: 'blob', id: 0, data: { kind: 'literal', bytes: Uint8Array.of(1) } },
    { type: 'deviceWrite', bo: 1, offset: 0, data: { kind: 'blob', id: 0 } },
    { type: 'blob', id: 0, data: { kind: 'literal', bytes: Uint8Array.of(2) } },
    { type: 'deviceWrite', bo: 1, offset: 0, data: { kind: 'blob', id: 0 } },
  ];
  const d = decodeTrace(encodeTrace(events));
  const writes = d.events.filter((e) => e.type === 'deviceWrite');
  assert.deepEqual(writes.map((e) => [...d.decoder.bytes(e.data)]), [[1], [2]]);
});

test('compactData keeps the bytes and is smaller where it can be', () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 600 }), fc.integer({ min: 0, max: 3 }), (noise, mode) => {
    const bytes = mode === 0 ? noise : mode === 1 ? new Uint8Array(noise.length * 4).fill(noise[0]!) : Uint8Array.from({ length: noise.length * 4 }, (_, i) => (i % 4 === 3 ? 0xff : noise[Math.floor(i / 64) % noise.length]!));
    const d = compactData(bytes);
    assert.deepEqual(materialize(d, new Map()), bytes);
    if (mode === 1 && bytes.length >= 8) assert.equal(d.kind, 'runs');
  }), { seed: propertySeed(15), numRuns: 300 });
});

test('a trace cut anywhere is refused as truncated (plain and gzip), with the offset where it ends', () => {
  const bytes = encodeTrace(everyRecord());
  for (let n = 0; n < bytes.length; n++) {
    assert.throws(() => decodeTrace(bytes.subarray(0, n)), (e: unknown) => {
      assert.ok(e instanceof TraceError, `cut at ${n}: ${String(e)}`);
      assert.equal(e.kind, 'truncated', `cut at ${n}: ${e.message}`);
      assert.ok(e.offset <= n, `cut at ${n}: offset ${e.offset}`);
      return true;
    });
  }
  const gz = gzipSync(bytes);
  for (let n = 0; n < gz.length; n++) {
    assert.throws(() => decodeTrace(gz.subarray(0, n)), (e: unknown) => e instanceof TraceError && (n < 2 ? e.kind === 'bad-magic' || e.kind === 'truncated' : e.kind === 'truncated' || e.kind === 'corrupt'), `gzip cut at ${n}`);
  }
});

test('named faults: bad magic, another version, a flipped byte (checksum), bytes after the end, undeclared objects', () => {
  const good = encodeTrace(everyRecord());
  const kindOf = (b: Uint8Array) => {
    try {
      decodeTrace(b);
      return 'accepted';
    } catch (e) {
      assert.ok(e instanceof TraceError, String(e));
      return e.kind;
    }
  };
  assert.equal(kindOf(Uint8Array.from([...good.subarray(0, 3), 0x00, ...good.subarray(4)])), 'bad-magic');
  assert.equal(kindOf(Uint8Array.from([...good.subarray(0, 7), 2, ...good.subarray(8)])), 'unsupported-version');
  const text = good.indexOf(0xc3); // inside the description's UTF-8: still parses, only the CRC tells
  const flipped = Uint8Array.from(good);
  flipped[text + 1] = 0xb6; // ü becomes ö
  assert.equal(kindOf(flipped), 'checksum');
  assert.equal(kindOf(Buffer.concat([good, Uint8Array.of(0x20, 0x00)])), 'corrupt');
  const bad = (events: TraceEvent[]) => kindOf(encodeTrace(events));
  const start: TraceEvent = { type: 'start', pageSize: PAGE, cpus: 1, processes: 1, description: '' };
  assert.equal(bad([{ type: 'bo', bo: 1, size: 1 }]), 'invalid', 'no start record first');
  assert.equal(bad([start, { type: 'buffer', bo: 1, offset: 0, size: 1 }]), 'invalid', 'undeclared BO');
  assert.equal(bad([start, { type: 'bo', bo: 1, size: PAGE }, { type: 'map', map: 0, process: 0, bo: 1, firstPage: 0, pages: 1, address: A, prot: 'rw' },
    { type: 'write', cpu: 0, process: 0, address: A + PAGE - 1, data: { kind: 'literal', bytes: Uint8Array.of(1, 2) } }]), 'invalid', 'a write past its mapping');
  assert.equal(bad([start, { type: 'bo', bo: 1, size: PAGE }, { type: 'deviceWrite', bo: 1, offset: 0, data: { kind: 'blob', id: 4 } }]), 'invalid', 'undefined blob');
  assert.equal(bad([start, { type: 'write', cpu: 1, process: 0, address: A, data: { kind: 'literal', bytes: Uint8Array.of(1) } }]), 'invalid', 'CPU out of range');
  // The message says where: byte offset and record index.
  assert.throws(() => decodeTrace(encodeTrace([start, { type: 'unmap', map: 9 }])), /trace invalid at byte 15 \(record 1\): mapping 9 is not mapped/);
});

test('property: any corruption of a valid trace is refused with a TraceError or decodes to checked events; never another exception', (t) => {
  const seed = propertySeed(20260115);
  t.diagnostic(`fast-check seed ${seed} (set VGPU_SEED to replay another)`);
  const good = encodeTrace(everyRecord());
  const edit = fc.oneof(
    fc.record({ op: fc.constant('flip' as const), at: fc.nat(good.length - 1), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ op: fc.constant('cut' as const), at: fc.nat(good.length - 1), value: fc.constant(0) }),
    fc.record({ op: fc.constant('insert' as const), at: fc.nat(good.length - 1), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ op: fc.constant('drop' as const), at: fc.nat(good.length - 1), value: fc.constant(0) }),
  );
  fc.assert(fc.property(fc.array(edit, { minLength: 1, maxLength: 4 }), fc.boolean(), fc.integer({ min: 1, max: 64 }), (edits, gzip, chunk) => {
    let b = Uint8Array.from(good);
    for (const e of edits) {
      const at = Math.min(e.at, b.length);
      if (e.op === 'flip') b[Math.min(at, b.length - 1)] ^= e.value || 1;
      else if (e.op === 'cut') b = b.subarray(0, at);
      else if (e.op === 'insert') b = Uint8Array.from([...b.subarray(0, at), e.value, ...b.subarray(at)]);
      else b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + 1)]);
    }
    const input = gzip ? gzipSync(b) : b;
    try {
      // Fed in small chunks, as a stream delivers it.
      const d = new TraceDecoder();
      const raw = gzip ? b : input;
      for (let i = 0; i < raw.length; i += chunk) d.push(raw.subarray(i, i + chunk));
      d.finish();
      decodeTrace(input);
    } catch (e) {
      if (!(e instanceof TraceError)) throw e;
      assert.ok(e.offset >= 0 && e.offset <= b.length, `offset ${e.offset} of ${b.length}`);
      assert.match(e.message, /^trace (bad-magic|unsupported-version|truncated|corrupt|checksum|invalid) at byte \d+/);
    }
  }), { seed, numRuns: 2000 });
});

test('readTraceFile streams a file (plain or gzip) and reports a cut file as a TraceError after the events before it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-trace-'));
  try {
    const bytes = encodeTrace(everyRecord());
    for (const [name, data] of [['t.vgtrace', bytes], ['t.vgtrace.gz', gzipSync(bytes)]] as const) {
      writeFileSync(join(dir, name), data);
      const seen: string[] = [];
      for await (const e of readTraceFile(join(dir, name))) seen.push(e.type);
      assert.deepEqual(seen, everyRecord().map((e) => e.type), name);
      writeFileSync(join(dir, name), data.subarray(0, data.length - 3));
      const before: string[] = [];
      await assert.rejects(async () => {
        for await (const e of readTraceFile(join(dir, name))) before.push(e.type);
      }, (e: unknown) => e instanceof TraceError && (e.kind === 'truncated' || e.kind === 'corrupt'), name);
      assert.ok(before.length > 0, `${name}: the events before the cut came out`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a trace file pushes back: drained() waits while the stream buffer is full, and the recorder waits for it between frames', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trace-drain-'));
  try {
    const w = new TraceFileWriter(join(dir, 't.vgt'));
    w.event({ type: 'start', pageSize: PAGE, cpus: 1, processes: 1, description: '' });
    let settled = false;
    const idle = w.drained().then(() => (settled = true));
    await Promise.resolve();
    assert.equal(settled, true, 'nothing buffered: no wait');
    await idle;
    // 200 records of 60 KiB of random-looking literal bytes: far past the stream's 16 KiB high-water mark.
    const bytes = randomBytes(1, 60_000);
    w.event({ type: 'bo', bo: 1, size: 64 * PAGE });
    for (let i = 0; i < 200; i++) w.event({ type: 'deviceWrite', bo: 1, offset: 0, data: { kind: 'literal', bytes } });
    settled = false;
    const full = w.drained().then(() => (settled = true));
    await Promise.resolve();
    assert.equal(settled, false, 'a full buffer makes the producer wait');
    await full;
    assert.equal(settled, true);
    await w.close();
    let writes = 0;
    for await (const e of readTraceFile(join(dir, 't.vgt'))) if (e.type === 'deviceWrite') writes++;
    assert.equal(writes, 200);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const rec = new TraceRecorder({ event: () => undefined, drained: () => gate });
  let through = false;
  const frame = Promise.resolve(rec.frame()).then(() => (through = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(through, false, 'the recorder holds the frame while its sink is full');
  release();
  await frame;
  assert.equal(through, true);
});
