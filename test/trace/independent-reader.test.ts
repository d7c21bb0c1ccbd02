// A second trace reader, written from docs/trace.md alone (it shares no code with src/trace):
// it decodes a trace recorded from the main job, rebuilds every BO's bytes from the
// recorded writes, and must arrive at the guest memory the run ended with. It also
// decodes the byte-by-byte example printed in the document.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { runMainJob, type MainJobView } from '../../src/index.js';
import { decodeTrace, TraceFileWriter, TraceRecorder } from '../../src/trace/index.js';

interface Decoded {
  start: { pageSize: number; cpus: number; processes: number; description: string };
  counts: Record<string, number>;
  /** Every BO's bytes after applying every write, BO write and device write in order. */
  memory: Map<number, Uint8Array>;
  records: number;
}

/** The reader of the document: LEB128 fields, tag + length records, four payload kinds, CRC-32 at the end. */
function independentDecode(file: Uint8Array): Decoded {
  const s = file[0] === 0x1f && file[1] === 0x8b ? new Uint8Array(gunzipSync(file)) : file;
  assert.equal(new TextDecoder().decode(s.subarray(0, 7)), 'VGTRACE');
  assert.equal(s[7], 1, 'version 1');
  let at = 8;
  const uint = (b: Uint8Array, pos: { i: number }) => {
    let v = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = b[pos.i++]!;
      v += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return v;
    }
  };
  const xorshift = (seed: number, length: number) => {
    const out = new Uint8Array(length);
    let x = seed;
    for (let i = 0; i < length; i += 4) {
      x = (x ^ (x << 13)) >>> 0;
      x = (x ^ (x >>> 17)) >>> 0;
      x = (x ^ (x << 5)) >>> 0;
      for (let k = 0; k < 4 && i + k < length; k++) out[i + k] = (x >>> (8 * k)) & 0xff;
    }
    return out;
  };
  const blobs = new Map<number, Uint8Array>();
  const payload = (b: Uint8Array, pos: { i: number }): Uint8Array => {
    const kind = uint(b, pos);
    if (kind === 0) {
      const n = uint(b, pos);
      pos.i += n;
      return b.slice(pos.i - n, pos.i);
    }
    if (kind === 1) {
      const unit = uint(b, pos);
      const runs = uint(b, pos);
      const parts: number[] = [];
      for (let r = 0; r < runs; r++) {
        const count = uint(b, pos);
        const u = [...b.subarray(pos.i, pos.i + unit)];
        pos.i += unit;
        for (let c = 0; c < count; c++) parts.push(...u);
      }
      return Uint8Array.from(parts);
    }
    if (kind === 2) {
      const length = uint(b, pos);
      return xorshift(uint(b, pos), length);
    }
    assert.equal(kind, 3, 'payload kind');
    return blobs.get(uint(b, pos))!;
  };
  let start: Decoded['start'] | null = null;
  const counts: Record<string, number> = {};
  const memory = new Map<number, Uint8Array>();
  const maps = new Map<number, { process: number; bo: number; firstPage: number; pages: number; address: number }>();
  const names: Record<number, string> = { 1: 'start', 2: 'bo', 3: 'surface', 4: 'buffer', 5: 'map', 6: 'unmap', 7: 'protect', 8: 'blob', 16: 'write', 17: 'read', 18: 'deviceWrite', 19: 'boWrite', 32: 'flush', 33: 'verify', 34: 'think' };
  let records = 0;
  for (;;) {
    const tag = s[at]!;
    const pos = { i: at + 1 };
    const len = uint(s, pos);
    const body = s.subarray(pos.i, pos.i + len);
    if (tag === 0x7f) {
      const p = { i: 0 };
      assert.equal(uint(body, p), records, 'end record: the record count');
      assert.equal(uint(body, p), crc32(s.subarray(0, at)), 'end record: CRC-32 of everything before it');
      assert.equal(pos.i + len, s.length, 'nothing after the end record');
      break;
    }
    records++;
    at = pos.i + len;
    if (tag >= 0x80) continue;
    const name = names[tag];
    assert.ok(name !== undefined, `tag ${tag}`);
    counts[name] = (counts[name] ?? 0) + 1;
    const p = { i: 0 };
    const f = () => uint(body, p);
    const write = (bo: number, offset: number, data: Uint8Array) => memory.get(bo)!.set(data, offset);
    const viaMap = (process: number, address: number, data: Uint8Array) => {
      const m = [...maps.values()].find((x) => x.process === process && x.address <= address && address + data.length <= x.address + x.pages * start!.pageSize)!;
      write(m.bo, m.firstPage * start!.pageSize + address - m.address, data);
    };
    switch (name) {
      case 'start': {
        start = { pageSize: f(), cpus: f(), processes: f(), description: '' };
        const n = f();
        start.description = new TextDecoder().decode(body.subarray(p.i, p.i + n));
        p.i += n;
        break;
      }
      case 'bo': {
        const bo = f();
        memory.set(bo, new Uint8Array(f()));
        break;
      }
      case 'surface': for (let k = 0; k < 6; k++) f(); break;
      case 'buffer': for (let k = 0; k < 3; k++) f(); break;
      case 'map': {
        const id = f();
        maps.set(id, { process: f(), bo: f(), firstPage: f(), pages: f(), address: f() });
        f();
        break;
      }
      case 'unmap': maps.delete(f()); break;
      case 'protect': for (let k = 0; k < 4; k++) f(); break;
      case 'blob': {
        const id = f();
        blobs.set(id, payload(body, p));
        break;
      }
      case 'write': {
        f(); // cpu
        const process = f();
        const address = f();
        viaMap(process, address, payload(body, p));
        break;
      }
      case 'read': for (let k = 0; k < 4; k++) f(); break;
      case 'deviceWrite': {
        const bo = f();
        const offset = f();
        write(bo, offset, payload(body, p));
        break;
      }
      case 'boWrite': {
        f();
        const bo = f();
        const offset = f();
        write(bo, offset, payload(body, p));
        break;
      }
      case 'think': f(); break;
    }
    assert.equal(p.i, body.length, `record ${records - 1} (${name}): the body holds exactly its fields`);
  }
  assert.ok(start !== null);
  return { start, counts, memory, records };
}

/** CRC-32 as the document defines it, bit by bit. */
function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of b) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

test('a trace recorded from the main job, read by a reader written from docs/trace.md, rebuilds the guest memory the run ended with', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-trace-'));
  try {
    const file = join(dir, 'run.vgtrace.gz');
    const writer = new TraceFileWriter(file);
    const finalMemory = new Map<number, Uint8Array>();
    let view: MainJobView | null = null;
    const recorder = new TraceRecorder(writer, 'independent reader test');
    const report = await runMainJob({
      frames: 24, hz: 0, gpuEvery: 8, verifyEvery: 12, fb: { width: 960, height: 540 },
      tap: Object.assign(recorder, {
        start: (job: MainJobView) => {
          view = job;
          TraceRecorder.prototype.start.call(recorder, job);
        },
        end: () => {
          for (const bo of [view!.fb.bo, view!.vb]) {
            const bytes = new Uint8Array(bo.size);
            bo.copyOut(0, bytes, 0, bo.size);
            finalMemory.set(bo.id, bytes);
          }
        },
      }),
    });
    await writer.close();
    assert.equal(report.coherent, true);

    const d = independentDecode(readFileSync(file));
    assert.equal(d.start.cpus, 4);
    assert.equal(d.start.processes, 2);
    assert.equal(d.start.description, 'independent reader test');
    assert.equal(d.counts['flush'], 24);
    assert.equal(d.counts['verify'], 3, 'after frames 12 and 24, and the final one');
    assert.equal(d.counts['map'], 3, 'the framebuffer in two processes, the vertex buffer in one');
    assert.ok((d.counts['deviceWrite'] ?? 0) >= 96 * 3, 'the device box: 96 rows, three times');
    for (const [bo, bytes] of finalMemory) assert.ok(Buffer.from(d.memory.get(bo)!).equals(bytes), `BO ${bo}: rebuilt bytes equal the run's final guest memory`);
    // The project's reader agrees on what is there.
    const ours = decodeTrace(readFileSync(file));
    assert.equal(ours.events.length, d.records);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the byte-by-byte example of docs/trace.md decodes, with both readers, to what the document says', () => {
  const doc = readFileSync('docs/trace.md', 'utf8');
  const block = doc.slice(doc.indexOf('```\n56 47 54 52 41 43 45 01'), doc.indexOf('```', doc.indexOf('```\n56 47 54 52') + 3));
  const hex = block.split('\n').map((l) => l.match(/^(?:[0-9a-f]{2} )*[0-9a-f]{2}/)?.[0] ?? '').join(' ');
  const bytes = Uint8Array.from(hex.trim().split(/\s+/).map((h) => parseInt(h, 16)));
  const d = independentDecode(bytes);
  assert.deepEqual([...d.memory.get(1)!.subarray(0, 4)], [1, 2, 3, 0]);
  assert.equal(d.records, 6);
  const ours = decodeTrace(bytes).events;
  assert.deepEqual(ours.map((e) => e.type), ['start', 'bo', 'buffer', 'map', 'write', 'flush']);
  assert.deepEqual(ours[3], { type: 'map', map: 0, process: 0, bo: 1, firstPage: 0, pages: 2, address: 0x200000, prot: 'rw' });
});
