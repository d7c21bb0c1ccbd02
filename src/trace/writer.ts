import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { createGzip, type Gzip } from 'node:zlib';
import { crc32 } from './crc32.js';
import { DATA_KIND, type Data, LIMITS, MAGIC, PROT_CODE, TAG, type TraceEvent, VERSION } from './format.js';

/**
 * Encodes events into the version-1 byte stream (docs/trace.md) and hands
 * the bytes to `emit` in chunks of about 64 KiB. The encoder checks what it
 * is given against the format's limits only; the reader checks the rest.
 */
export class TraceEncoder {
  private crc = 0;
  private records = 0;
  private ended = false;
  private readonly out = new Growable(1 << 16);
  private readonly body = new Growable(1 << 12);

  constructor(private readonly emit: (chunk: Uint8Array) => void) {
    this.out.bytes(MAGIC);
    this.out.byte(VERSION);
  }

  /** Events written so far, the start record included. */
  get count(): number {
    return this.records;
  }

  event(e: TraceEvent): void {
    if (this.ended) throw new Error('trace already ended');
    const b = this.body;
    b.reset();
    switch (e.type) {
      case 'start':
        b.uint(e.pageSize).uint(e.cpus).uint(e.processes).string(e.description);
        break;
      case 'bo':
        b.uint(e.bo).uint(e.size);
        break;
      case 'surface':
        b.uint(e.bo).uint(e.offset).uint(e.width).uint(e.height).uint(e.bytesPerPixel).uint(e.rowPitch);
        break;
      case 'buffer':
        b.uint(e.bo).uint(e.offset).uint(e.size);
        break;
      case 'map':
        b.uint(e.map).uint(e.process).uint(e.bo).uint(e.firstPage).uint(e.pages).uint(e.address).uint(PROT_CODE[e.prot]);
        break;
      case 'unmap':
        b.uint(e.map);
        break;
      case 'protect':
        b.uint(e.map).uint(e.firstPage).uint(e.pages).uint(PROT_CODE[e.prot]);
        break;
      case 'blob':
        if (e.data.kind === 'blob') throw new RangeError('a blob cannot refer to another blob');
        b.uint(e.id).data(e.data);
        break;
      case 'write':
        b.uint(e.cpu).uint(e.process).uint(e.address).data(e.data);
        break;
      case 'read':
        b.uint(e.cpu).uint(e.process).uint(e.address).uint(e.length);
        break;
      case 'deviceWrite':
        b.uint(e.bo).uint(e.offset).data(e.data);
        break;
      case 'boWrite':
        b.uint(e.cpu).uint(e.bo).uint(e.offset).data(e.data);
        break;
      case 'think':
        b.uint(e.micros);
        break;
      case 'flush':
      case 'verify':
        break;
    }
    this.record(TAG[e.type], b.view());
  }

  /** Write the end record and emit what is left. */
  end(): void {
    if (this.ended) return;
    const b = this.body;
    b.reset();
    const records = this.records;
    this.crc = crc32(this.out.view(), this.crc); // everything before the end record's tag
    b.uint(records).uint(this.crc);
    this.out.byte(TAG.end).uint(b.length).bytes(b.view());
    this.ended = true;
    this.drain();
  }

  private record(tag: number, body: Uint8Array): void {
    if (body.length > LIMITS.maxRecordBytes) throw new RangeError(`record of ${body.length} bytes exceeds the format's ${LIMITS.maxRecordBytes}`);
    this.out.byte(tag).uint(body.length).bytes(body);
    this.records++;
    if (this.out.length >= 1 << 16) {
      this.crc = crc32(this.out.view(), this.crc);
      this.drain();
    }
  }

  private drain(): void {
    if (this.out.length === 0) return;
    this.emit(this.out.view().slice());
    this.out.reset();
  }
}

/** A byte buffer that grows, with the format's primitive encoders. */
class Growable {
  private buf: Uint8Array;
  length = 0;

  constructor(size: number) {
    this.buf = new Uint8Array(size);
  }

  reset(): void {
    this.length = 0;
  }

  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.view());
    this.buf = next;
  }

  byte(v: number): this {
    this.room(1);
    this.buf[this.length++] = v;
    return this;
  }

  /** Unsigned LEB128: 7 bits per byte, least significant first, high bit = more follows. */
  uint(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not an unsigned integer of the format: ${v}`);
    this.room(8);
    while (v >= 0x80) {
      this.buf[this.length++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.length++] = v;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }

  string(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.uint(b.length).bytes(b);
  }

  data(d: Data): this {
    this.byte(DATA_KIND[d.kind]);
    switch (d.kind) {
      case 'literal':
        if (d.bytes.length > LIMITS.maxDataBytes) throw new RangeError(`payload of ${d.bytes.length} bytes exceeds ${LIMITS.maxDataBytes}`);
        return this.uint(d.bytes.length).bytes(d.bytes);
      case 'runs':
        this.uint(d.unitSize).uint(d.counts.length);
        for (let i = 0; i < d.counts.length; i++) this.uint(d.counts[i]!).bytes(d.units.subarray(i * d.unitSize, (i + 1) * d.unitSize));
        return this;
      case 'random':
        return this.uint(d.length).uint(d.seed);
      case 'blob':
        return this.uint(d.id);
    }
  }
}

/** A trace being written to a file, gzip-compressed when the name ends in .gz. */
export class TraceFileWriter {
  private readonly encoder: TraceEncoder;
  private readonly file: WriteStream;
  private readonly gzip: Gzip | null;
  private failure: Error | null = null;
  private readonly finished: Promise<void>;
  private readonly sink: Writable;
  /** The stream's buffer passed its high-water mark: the producer should wait for drained(). */
  private full = false;

  constructor(readonly path: string) {
    this.file = createWriteStream(path);
    this.gzip = path.endsWith('.gz') ? createGzip({ level: 9 }) : null;
    this.gzip?.pipe(this.file);
    const sink = this.gzip ?? this.file;
    this.finished = new Promise<void>((resolve, reject) => {
      this.file.on('finish', resolve);
      const fail = (e: Error) => {
        this.failure ??= e;
        reject(e);
      };
      this.file.on('error', fail);
      this.gzip?.on('error', fail);
    });
    this.finished.catch(() => undefined); // reported by close()
    this.sink = sink;
    this.encoder = new TraceEncoder((chunk) => {
      if (!sink.write(chunk)) this.full = true;
    });
  }

  /** Resolves at once while the stream has room, else on its 'drain'; rejects with the file's error. */
  async drained(): Promise<void> {
    if (this.failure !== null) throw this.failure;
    if (!this.full) return;
    await Promise.race([once(this.sink, 'drain'), this.finished]);
    this.full = false;
    if (this.failure !== null) throw this.failure;
  }

  get count(): number {
    return this.encoder.count;
  }

  event(e: TraceEvent): void {
    if (this.failure !== null) throw this.failure;
    this.encoder.event(e);
  }

  /** End the trace and wait until every byte is on disk. */
  async close(): Promise<void> {
    this.encoder.end();
    (this.gzip ?? this.file).end();
    await this.finished;
  }
}

/** Encode events into one buffer (tests, small generated traces). */
export function encodeTrace(events: Iterable<TraceEvent>): Uint8Array {
  const chunks: Uint8Array[] = [];
  const enc = new TraceEncoder((c) => chunks.push(c));
  for (const e of events) enc.event(e);
  enc.end();
  return Buffer.concat(chunks);
}
