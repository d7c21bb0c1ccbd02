// Makes the traces shipped in bench/traces/ (docs/trace.md, "Shipped traces"):
//
//   npm run build && node dist/bench/traces/generate.js [--only NAME,...]
//
//  - scene-960x540, scene-1920x1080: the main job's scene (`npm start`) recorded
//    at 60 Hz for 120 frames (busy, idle and sparse phases; the device writes its
//    box every 20 frames) on a small and a full-HD framebuffer. The small
//    framebuffer is under 512 pages, so its tracker starts in PAGETABLE; the
//    large one starts in MKWRITE. Think times are the recording machine's.
//  - database: a 16 MiB table buffer in two processes, sparse random 128-byte
//    record updates from four CPUs, an index page rewritten every batch, a
//    checkpoint that rewrites 1 MiB every 25 batches, a read-only window
//    (protect) and a re-mapped scratch window (unmap, map).
//  - video: a 1280×720×4 surface rewritten whole every frame in 16-row strips
//    (a decoded picture between black letterbox bars), 60 frames per second,
//    with a device-side subtitle box every 30 frames.
// The synthetic ones are generated from fixed seeds: running this again makes
// the same files for them; the scene recordings differ in think times only.
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { runMainJob } from '../../src/workload/main-job.js';
import { type Data, SHIPPED_TRACES_DIR, type TraceEvent, TraceFileWriter, TraceRecorder } from '../../src/trace/index.js';

const PAGE = 4096;

async function recordScene(name: string, width: number, height: number): Promise<void> {
  const writer = new TraceFileWriter(join(SHIPPED_TRACES_DIR, `${name}.vgtrace.gz`));
  const report = await runMainJob({
    frames: 120, hz: 60, fb: { width, height }, tap: new TraceRecorder(writer, `main job scene, ${width}x${height}, 120 frames at 60 Hz`),
  });
  await writer.close();
  if (!report.coherent) throw new Error(`${name}: the recorded run lost coherence`);
}

/** xorshift32, the generator the trace format uses for random payloads too. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function random(length: number, next: () => number): Data {
  return { kind: 'random', length, seed: next() || 1 };
}

function fill(length: number, byte: number): Data {
  return { kind: 'runs', unitSize: 1, counts: [length], units: Uint8Array.of(byte) };
}

function* database(): Generator<TraceEvent> {
  const next = prng(0xdb);
  const table = 16 << 20;
  const base = [0x10000000, 0x20000000];
  yield { type: 'start', pageSize: PAGE, cpus: 4, processes: 2, description: 'database: sparse random 128-byte record updates in a 16 MiB table, 100 batches' };
  yield { type: 'bo', bo: 1, size: table };
  yield { type: 'buffer', bo: 1, offset: 0, size: table };
  yield { type: 'bo', bo: 2, size: 1 << 20 };
  yield { type: 'buffer', bo: 2, offset: 0, size: 1 << 20 };
  // The table in both processes; the scratch buffer in process 0 only.
  yield { type: 'map', map: 0, process: 0, bo: 1, firstPage: 0, pages: table / PAGE, address: base[0]!, prot: 'rw' };
  yield { type: 'map', map: 1, process: 1, bo: 1, firstPage: 0, pages: table / PAGE, address: base[1]!, prot: 'rw' };
  yield { type: 'map', map: 2, process: 0, bo: 2, firstPage: 0, pages: 256, address: 0x30000000, prot: 'rw' };
  for (let batch = 0; batch < 100; batch++) {
    const updates = 48 + (next() % 32);
    for (let i = 0; i < updates; i++) {
      const process = next() % 2;
      const record = next() % (table / 128);
      yield { type: 'write', cpu: next() % 4, process, address: base[process]! + record * 128, data: random(128, next) };
    }
    // The index: one page at the start of the table, rewritten every batch.
    yield { type: 'write', cpu: 0, process: 0, address: base[0]!, data: random(PAGE, next) };
    for (let i = 0; i < 8; i++) yield { type: 'read', cpu: 1 + (i % 3), process: 1, address: base[1]! + (next() % (table / 128)) * 128, length: 128 };
    if (batch % 25 === 24) {
      const at = (next() % 15) << 20;
      for (let mb = 0; mb < 1 << 20; mb += 64 << 10) yield { type: 'write', cpu: 3, process: 0, address: base[0]! + at + mb, data: random(64 << 10, next) };
    }
    if (batch % 20 === 10) {
      // A read-only window for a while (a snapshot being read), then writable again.
      yield { type: 'protect', map: 1, firstPage: 1024, pages: 256, prot: 'r' };
      yield { type: 'read', cpu: 2, process: 1, address: base[1]! + 1024 * PAGE, length: 256 * PAGE };
      yield { type: 'protect', map: 1, firstPage: 1024, pages: 256, prot: 'rw' };
    }
    if (batch % 10 === 5) {
      // The scratch window is dropped and mapped again (a new sort run).
      yield { type: 'unmap', map: 2 };
      yield { type: 'map', map: 2, process: 0, bo: 2, firstPage: 0, pages: 256, address: 0x30000000, prot: 'rw' };
    }
    yield { type: 'boWrite', cpu: 2, bo: 2, offset: (next() % 255) * PAGE, data: fill(2 * PAGE, batch & 0xff) };
    yield { type: 'flush' };
    yield { type: 'think', micros: 2000 + (next() % 3000) };
    if (batch % 50 === 49) yield { type: 'verify' };
  }
}

function* video(): Generator<TraceEvent> {
  const next = prng(0x71de0);
  const [w, h, bpp] = [1280, 720, 4];
  const pitch = w * bpp;
  const size = pitch * h;
  const bars = 88; // letterbox rows at the top and at the bottom
  yield { type: 'start', pageSize: PAGE, cpus: 2, processes: 1, description: 'video: a 1280x720 surface rewritten whole every frame, 120 frames at 60 Hz' };
  yield { type: 'bo', bo: 1, size };
  yield { type: 'surface', bo: 1, offset: 0, width: w, height: h, bytesPerPixel: bpp, rowPitch: pitch };
  yield { type: 'map', map: 0, process: 0, bo: 1, firstPage: 0, pages: Math.ceil(size / PAGE), address: 0x40000000, prot: 'rw' };
  const black: Data = { kind: 'runs', unitSize: 4, counts: [w * bars], units: Uint8Array.of(0, 0, 0, 0xff) };
  for (let f = 0; f < 120; f++) {
    yield { type: 'write', cpu: 0, process: 0, address: 0x40000000, data: black };
    for (let row = bars; row < h - bars; row += 16) {
      const rows = Math.min(16, h - bars - row);
      yield { type: 'write', cpu: (row >> 4) % 2, process: 0, address: 0x40000000 + row * pitch, data: random(rows * pitch, next) };
    }
    yield { type: 'write', cpu: 1, process: 0, address: 0x40000000 + (h - bars) * pitch, data: black };
    if (f % 30 === 15) {
      // The device draws a subtitle box into the lower bar.
      for (let r = 0; r < 40; r++) yield { type: 'deviceWrite', bo: 1, offset: (h - 70 + r) * pitch + 320 * bpp, data: fill(640 * bpp, 0xe0) };
    }
    yield { type: 'flush' };
    yield { type: 'think', micros: 16_667 };
    if (f % 60 === 59) yield { type: 'verify' };
  }
}

async function writeSynthetic(name: string, events: Iterable<TraceEvent>): Promise<void> {
  const writer = new TraceFileWriter(join(SHIPPED_TRACES_DIR, `${name}.vgtrace.gz`));
  for (const e of events) writer.event(e);
  await writer.close();
}

const MAKERS: Record<string, () => Promise<void>> = {
  'scene-960x540': () => recordScene('scene-960x540', 960, 540),
  'scene-1920x1080': () => recordScene('scene-1920x1080', 1920, 1080),
  database: () => writeSynthetic('database', database()),
  video: () => writeSynthetic('video', video()),
};

const { values } = parseArgs({ options: { only: { type: 'string' } }, strict: true });
const only = values.only?.split(',') ?? Object.keys(MAKERS);
for (const name of only) {
  const make = MAKERS[name];
  if (make === undefined) throw new Error(`unknown trace '${name}' (known: ${Object.keys(MAKERS).join(', ')})`);
  process.stderr.write(`${name}\n`);
  await make();
}
