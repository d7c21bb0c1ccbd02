import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip, gunzipSync } from 'node:zlib';
import { crc32 } from './crc32.js';
import { compactSize, dataLength, materialize } from './data.js';
import { TraceError, type TraceErrorKind } from './errors.js';
import {
  DATA_KIND, type Data, FIRST_EXTENSION_TAG, LIMITS, MAGIC, type Payload, type Prot, TAG, type TraceEnd, type TraceEvent, type TraceStart, VERSION,
} from './format.js';

const TAG_NAMES = new Map<number, TraceEvent['type'] | 'end'>(Object.entries(TAG).map(([k, v]) => [v, k as TraceEvent['type'] | 'end']));
const PROTS: Record<number, Prot | undefined> = { 0: 'none', 1: 'r', 3: 'rw' };
const HEADER_BYTES = MAGIC.length + 1;

interface LiveMap {
  process: number;
  bo: number;
  firstPage: number;
  pages: number;
  address: number;
  end: number;
  /** Protection by page of the mapping (counted from its first page): sorted, adjacent, covering [0, pages). */
  segments: Array<{ first: number; end: number; prot: Prot }>;
}

/**
 * Decodes a version-1 trace pushed to it in chunks of any size, and checks
 * it: every record against the format, every event against what came before
 * (declared BOs, mappings, CPUs, blobs), the end record's count and CRC-32.
 * Events it returns are safe to replay; anything else is a TraceError that
 * says where (byte offset, record index) and what. Memory stays bounded by
 * LIMITS whatever the file claims: one record (maxRecordBytes), the blob table
 * kept compact (maxBlobTableBytes; a payload's bytes are made only when an
 * event is applied, at most maxDataBytes), the declared BOs and surfaces
 * (maxBos, maxSurfaces) and the live mappings (maxMapSegments).
 */
export class TraceDecoder {
  start: TraceStart | null = null;
  /** Every blob defined so far, by id, as the file gives it (kept compact). */
  readonly blobs = new Map<number, Payload>();
  /** compactSize of the blob table. */
  private blobBytes = 0;
  /** BO bytes declared so far, each BO rounded up to whole pages. */
  private boBytes = 0;
  private surfaces = 0;
  /** Segments of the live mappings. */
  private segments = 0;
  private pending: Uint8Array = new Uint8Array(0);
  /**
   * Chunks that arrived while the record at pending[0] was still incomplete,
   * joined once it can be (joining every 64 KiB chunk as it came made a
   * 16 MiB record cost ~2 GiB of copying).
   */
  private queued: Uint8Array[] = [];
  private queuedBytes = 0;
  /** Bytes the record at pending[0] needs in all, once its length is known (0: not known). */
  private need = 0;
  /** Uncompressed stream offset of pending[0]. */
  private base = 0;
  private records = 0;
  private crc = 0;
  private headerDone = false;
  private endSeen: TraceEnd | null = null;
  private readonly bos = new Map<number, number>();
  private readonly maps = new Map<number, LiveMap>();

  /** Decode what `chunk` completes; returns the events it finished, in order. */
  push(chunk: Uint8Array): TraceEvent[] {
    if (chunk.length === 0) return [];
    if (this.endSeen !== null) throw this.fail('corrupt', this.base, this.records, 'bytes after the end record');
    this.queued.push(chunk);
    this.queuedBytes += chunk.length;
    if (this.pending.length + this.queuedBytes < this.need) return [];
    this.joinQueued();
    const events: TraceEvent[] = [];
    let at = 0;
    if (!this.headerDone) {
      if (this.pending.length < HEADER_BYTES) {
        if (!startsLike(this.pending, MAGIC)) throw this.fail('bad-magic', 0, -1, 'not a vgpu-dirty trace (no VGTRACE magic)');
        return events;
      }
      if (!startsLike(this.pending.subarray(0, MAGIC.length), MAGIC)) throw this.fail('bad-magic', 0, -1, 'not a vgpu-dirty trace (no VGTRACE magic)');
      const version = this.pending[MAGIC.length]!;
      if (version !== VERSION) throw this.fail('unsupported-version', MAGIC.length, -1, `version ${version}; this reader knows version ${VERSION}`);
      this.headerDone = true;
      at = HEADER_BYTES;
    }
    while (at < this.pending.length) {
      const frame = this.frameAt(at);
      if (frame === null) break;
      const { tag, bodyStart, bodyEnd } = frame;
      const offset = this.base + at;
      if (tag === TAG.end) {
        this.crc = crc32(this.pending.subarray(0, at), this.crc);
        this.finishEnd(offset, this.pending.subarray(bodyStart, bodyEnd));
        if (bodyEnd < this.pending.length) throw this.fail('corrupt', this.base + bodyEnd, this.records, 'bytes after the end record');
        at = bodyEnd;
        break;
      }
      const e = this.decodeRecord(tag, this.pending.subarray(bodyStart, bodyEnd), offset);
      if (e !== null) events.push(e);
      this.records++;
      at = bodyEnd;
    }
    if (this.endSeen === null) this.crc = crc32(this.pending.subarray(0, at), this.crc);
    this.base += at;
    this.pending = this.pending.subarray(at);
    return events;
  }

  /** The input is over: it must have ended with the end record. */
  finish(): TraceEnd {
    if (this.endSeen !== null) return this.endSeen;
    this.joinQueued();
    if (!this.headerDone) throw this.fail('truncated', this.pending.length, -1, 'the trace ends inside its header');
    throw this.fail('truncated', this.base + this.pending.length, this.records, this.pending.length > 0 ? 'the trace ends inside a record' : 'the trace ends without its end record');
  }

  /** The bytes of a payload of an event this decoder returned. */
  bytes(d: Data): Uint8Array {
    return materialize(d, this.blobs);
  }

  private joinQueued(): void {
    if (this.queued.length === 0) return;
    const parts = this.pending.length > 0 ? [this.pending, ...this.queued] : this.queued;
    this.pending = parts.length === 1 ? parts[0]! : concatAll(parts, this.pending.length + this.queuedBytes);
    this.queued = [];
    this.queuedBytes = 0;
  }

  /**
   * Tag and body bounds of the record at `at`, or null when its bytes have not
   * all arrived (then `need` says how many it takes from `at`, when known).
   */
  private frameAt(at: number): { tag: number; bodyStart: number; bodyEnd: number } | null {
    const p = this.pending;
    const offset = this.base + at;
    const tag = p[at]!;
    if (tag === 0 || (tag < FIRST_EXTENSION_TAG && !TAG_NAMES.has(tag))) throw this.fail('corrupt', offset, this.records, `unknown record tag 0x${tag.toString(16)}`);
    let len = 0;
    let scale = 1;
    let i = at + 1;
    this.need = 0;
    for (let n = 0; ; n++) {
      if (i >= p.length) return null;
      if (n === 8) throw this.fail('corrupt', offset, this.records, 'record length longer than 8 bytes');
      const b = p[i++]!;
      len += (b & 0x7f) * scale;
      scale *= 0x80;
      if ((b & 0x80) === 0) break;
    }
    if (len > LIMITS.maxRecordBytes) throw this.fail('corrupt', offset, this.records, `record length ${len} exceeds ${LIMITS.maxRecordBytes}`);
    if (i + len > p.length) {
      this.need = i + len - at;
      return null;
    }
    return { tag, bodyStart: i, bodyEnd: i + len };
  }

  private finishEnd(offset: number, body: Uint8Array): void {
    const c = new Cursor(body, (detail) => this.fail('corrupt', offset, this.records, detail));
    const records = c.uint();
    const crc = c.uint();
    c.done('end');
    if (this.start === null) throw this.fail('invalid', offset, this.records, 'end record before the start record');
    if (records !== this.records) throw this.fail('checksum', offset, this.records, `end record counts ${records} records, the trace has ${this.records}`);
    if (crc !== this.crc) throw this.fail('checksum', offset, this.records, `CRC-32 0x${this.crc.toString(16)} of the records differs from the end record's 0x${crc.toString(16)}`);
    this.endSeen = { records, crc32: crc };
  }

  private decodeRecord(tag: number, body: Uint8Array, offset: number): TraceEvent | null {
    const record = this.records;
    const name = TAG_NAMES.get(tag);
    if (name === undefined) return null; // an extension record: skipped
    const corrupt = (detail: string) => this.fail('corrupt', offset, record, detail);
    const invalid = (detail: string) => this.fail('invalid', offset, record, detail);
    const c = new Cursor(body, corrupt);
    if (name !== 'start' && this.start === null) throw invalid(`${name} record before the start record`);
    const start = this.start!;
    const e = this.parse(name as TraceEvent['type'], c);
    c.done(name);
    switch (e.type) {
      case 'start':
        if (this.start !== null) throw invalid('a second start record');
        if (!(e.pageSize >= 512 && e.pageSize <= 65536 && (e.pageSize & (e.pageSize - 1)) === 0)) throw invalid(`page size ${e.pageSize} is not a power of two in [512, 65536]`);
        if (e.cpus < 1 || e.cpus > LIMITS.cpus) throw invalid(`cpus ${e.cpus} outside [1, ${LIMITS.cpus}]`);
        if (e.processes < 1 || e.processes > LIMITS.processes) throw invalid(`processes ${e.processes} outside [1, ${LIMITS.processes}]`);
        this.start = { pageSize: e.pageSize, cpus: e.cpus, processes: e.processes, description: e.description };
        break;
      case 'bo':
        if (this.bos.has(e.bo)) throw invalid(`BO ${e.bo} declared twice`);
        if (e.size < 1 || e.size > LIMITS.maxBoBytes) throw invalid(`BO ${e.bo} size ${e.size} outside [1, ${LIMITS.maxBoBytes}]`);
        if (this.bos.size >= LIMITS.maxBos) throw invalid(`more than ${LIMITS.maxBos} BOs`);
        this.boBytes += Math.ceil(e.size / start.pageSize) * start.pageSize;
        if (this.boBytes > LIMITS.maxBoBytes) throw invalid(`BOs of ${this.boBytes} bytes in whole pages exceed ${LIMITS.maxBoBytes}`);
        this.bos.set(e.bo, e.size);
        break;
      case 'surface': {
        const size = this.boSize(e.bo, invalid);
        if (e.offset % start.pageSize !== 0) throw invalid(`surface offset ${e.offset} is not page aligned`);
        if (e.width < 1 || e.height < 1 || e.bytesPerPixel < 1 || e.bytesPerPixel > LIMITS.maxBytesPerPixel) throw invalid(`surface width or height below 1, or bytes per pixel outside [1, ${LIMITS.maxBytesPerPixel}]`);
        if (++this.surfaces > LIMITS.maxSurfaces) throw invalid(`more than ${LIMITS.maxSurfaces} surfaces`);
        if (e.rowPitch < e.width * e.bytesPerPixel) throw invalid(`row pitch ${e.rowPitch} is less than a row (${e.width * e.bytesPerPixel})`);
        if (e.offset + e.rowPitch * (e.height - 1) + e.width * e.bytesPerPixel > size) throw invalid(`surface exceeds BO ${e.bo}`);
        break;
      }
      case 'buffer':
        if (e.size < 1 || e.offset + e.size > this.boSize(e.bo, invalid)) throw invalid(`buffer [${e.offset}, ${e.offset + e.size}) outside BO ${e.bo}`);
        break;
      case 'map': {
        if (this.maps.has(e.map)) throw invalid(`mapping ${e.map} is already mapped`);
        this.process(e.process, invalid);
        const pages = Math.ceil(this.boSize(e.bo, invalid) / start.pageSize);
        if (e.pages < 1 || e.firstPage + e.pages > pages) throw invalid(`pages [${e.firstPage}, ${e.firstPage + e.pages}) outside BO ${e.bo} (${pages} pages)`);
        if (e.address === 0 || e.address % start.pageSize !== 0) throw invalid(`address 0x${e.address.toString(16)} is not a non-zero multiple of the page size`);
        const end = e.address + e.pages * start.pageSize;
        const top = LIMITS.addressSpacePages * start.pageSize;
        if (end > top) throw invalid(`mapping ends beyond the address space (0x${top.toString(16)}: ${LIMITS.addressSpacePages} pages)`);
        for (const [id, m] of this.maps) if (m.process === e.process && m.address < end && e.address < m.end) throw invalid(`mapping ${e.map} overlaps mapping ${id}`);
        this.addSegments(1, invalid);
        this.maps.set(e.map, { process: e.process, bo: e.bo, firstPage: e.firstPage, pages: e.pages, address: e.address, end, segments: [{ first: 0, end: e.pages, prot: e.prot }] });
        break;
      }
      case 'unmap':
        this.segments -= this.liveMap(e.map, invalid).segments.length;
        this.maps.delete(e.map);
        break;
      case 'protect': {
        const m = this.liveMap(e.map, invalid);
        if (e.pages < 1 || e.firstPage + e.pages > m.pages) throw invalid(`pages [${e.firstPage}, ${e.firstPage + e.pages}) outside mapping ${e.map} (${m.pages} pages)`);
        this.protect(m, e.firstPage, e.firstPage + e.pages, e.prot, invalid);
        break;
      }
      case 'blob':
        if (e.id >= LIMITS.blobIds) throw invalid(`blob id ${e.id} is not below ${LIMITS.blobIds}`);
        this.defineBlob(e.id, e.data as Payload, invalid);
        break;
      case 'write':
        this.cpu(e.cpu, invalid);
        this.inMapping(e.process, e.address, this.payload(e.data, invalid), 'rw', invalid);
        break;
      case 'read':
        this.cpu(e.cpu, invalid);
        if (e.length < 1 || e.length > LIMITS.maxDataBytes) throw invalid(`read length ${e.length} outside [1, ${LIMITS.maxDataBytes}]`);
        this.inMapping(e.process, e.address, e.length, 'r', invalid);
        break;
      case 'deviceWrite': {
        const len = this.payload(e.data, invalid);
        if (e.offset + len > this.boSize(e.bo, invalid)) throw invalid(`device write [${e.offset}, ${e.offset + len}) outside BO ${e.bo}`);
        break;
      }
      case 'boWrite': {
        this.cpu(e.cpu, invalid);
        const len = this.payload(e.data, invalid);
        if (e.offset + len > this.boSize(e.bo, invalid)) throw invalid(`write [${e.offset}, ${e.offset + len}) outside BO ${e.bo}`);
        const first = Math.floor(e.offset / start.pageSize);
        const last = Math.floor((e.offset + len - 1) / start.pageSize);
        let covered = false;
        for (const [id, m] of this.maps) {
          if (m.bo !== e.bo || first < m.firstPage || last >= m.firstPage + m.pages) continue;
          covered = true;
          if (allows(m, first - m.firstPage, last - m.firstPage, 'rw')) {
            e.via = id;
            break;
          }
        }
        if (e.via === undefined) throw invalid(covered ? `no mapping of BO ${e.bo} is writable over bytes [${e.offset}, ${e.offset + len})` : `no mapping of BO ${e.bo} covers bytes [${e.offset}, ${e.offset + len})`);
        break;
      }
      case 'flush':
      case 'verify':
      case 'think':
        break;
    }
    return e;
  }

  private parse(type: TraceEvent['type'], c: Cursor): TraceEvent {
    switch (type) {
      case 'start':
        return { type, pageSize: c.uint(), cpus: c.uint(), processes: c.uint(), description: c.string() };
      case 'bo':
        return { type, bo: c.uint(), size: c.uint() };
      case 'surface':
        return { type, bo: c.uint(), offset: c.uint(), width: c.uint(), height: c.uint(), bytesPerPixel: c.uint(), rowPitch: c.uint() };
      case 'buffer':
        return { type, bo: c.uint(), offset: c.uint(), size: c.uint() };
      case 'map':
        return { type, map: c.uint(), process: c.uint(), bo: c.uint(), firstPage: c.uint(), pages: c.uint(), address: c.uint(), prot: c.prot() };
      case 'unmap':
        return { type, map: c.uint() };
      case 'protect':
        return { type, map: c.uint(), firstPage: c.uint(), pages: c.uint(), prot: c.prot() };
      case 'blob':
        return { type, id: c.uint(), data: c.data(false) };
      case 'write':
        return { type, cpu: c.uint(), process: c.uint(), address: c.uint(), data: c.data(true) };
      case 'read':
        return { type, cpu: c.uint(), process: c.uint(), address: c.uint(), length: c.uint() };
      case 'deviceWrite':
        return { type, bo: c.uint(), offset: c.uint(), data: c.data(true) };
      case 'boWrite':
        return { type, cpu: c.uint(), bo: c.uint(), offset: c.uint(), data: c.data(true) };
      case 'think':
        return { type, micros: c.uint() };
      case 'flush':
      case 'verify':
        return { type };
    }
  }

  private boSize(bo: number, invalid: (d: string) => TraceError): number {
    const size = this.bos.get(bo);
    if (size === undefined) throw invalid(`BO ${bo} was not declared`);
    return size;
  }

  private liveMap(map: number, invalid: (d: string) => TraceError): LiveMap {
    const m = this.maps.get(map);
    if (m === undefined) throw invalid(`mapping ${map} is not mapped`);
    return m;
  }

  private process(p: number, invalid: (d: string) => TraceError): void {
    if (p >= this.start!.processes) throw invalid(`process ${p} is not below the start record's ${this.start!.processes}`);
  }

  private cpu(cpu: number, invalid: (d: string) => TraceError): void {
    if (cpu >= this.start!.cpus) throw invalid(`CPU ${cpu} is not below the start record's ${this.start!.cpus}`);
  }

  /** A payload's length, checked: defined blob, at least one byte, within the limit. */
  private payload(d: Data, invalid: (d: string) => TraceError): number {
    if (d.kind === 'blob') {
      d.resolved = this.blobs.get(d.id);
      if (d.resolved === undefined) throw invalid(`blob ${d.id} was not defined`);
    }
    const len = dataLength(d, this.blobs);
    if (len < 1) throw invalid('an empty payload');
    return len;
  }

  /** Bytes lie inside one mapping of the process, and its protection allows `need` on all their pages. */
  private inMapping(process: number, address: number, length: number, need: Prot, invalid: (d: string) => TraceError): void {
    this.process(process, invalid);
    const range = `bytes [0x${address.toString(16)}, 0x${(address + length).toString(16)}) of process ${process}`;
    for (const [id, m] of this.maps) {
      if (m.process !== process || m.address > address || address + length > m.end) continue;
      const ps = this.start!.pageSize;
      const first = Math.floor((address - m.address) / ps);
      const last = Math.floor((address + length - 1 - m.address) / ps);
      if (!allows(m, first, last, need)) throw invalid(`${range}: mapping ${id} does not allow ${need === 'r' ? 'reading' : 'writing'} them (a replay would fault)`);
      return;
    }
    throw invalid(`${range} are not inside one of its mappings`);
  }

  /** Redefine blob `id`; the table stays within its byte budget. */
  private defineBlob(id: number, p: Payload, invalid: (d: string) => TraceError): void {
    const old = this.blobs.get(id);
    const bytes = this.blobBytes - (old === undefined ? 0 : compactSize(old)) + compactSize(p);
    if (bytes > LIMITS.maxBlobTableBytes) throw invalid(`the blob table would hold ${bytes} bytes, over its limit of ${LIMITS.maxBlobTableBytes} (maxBlobTableBytes)`);
    this.blobBytes = bytes;
    this.blobs.set(id, p);
  }

  /** mprotect pages [first, end) of a mapping: split its segments there and set their protection. */
  private protect(m: LiveMap, first: number, end: number, prot: Prot, invalid: (d: string) => TraceError): void {
    const out: LiveMap['segments'] = [];
    const push = (s: { first: number; end: number; prot: Prot }) => {
      const prev = out[out.length - 1];
      if (prev !== undefined && prev.prot === s.prot) prev.end = s.end;
      else out.push({ ...s });
    };
    for (const s of m.segments) {
      if (s.end <= first || s.first >= end) {
        push(s);
        continue;
      }
      if (s.first < first) push({ first: s.first, end: first, prot: s.prot });
      push({ first: Math.max(s.first, first), end: Math.min(s.end, end), prot });
      if (s.end > end) push({ first: end, end: s.end, prot: s.prot });
    }
    this.addSegments(out.length - m.segments.length, invalid);
    m.segments = out;
  }

  private addSegments(n: number, invalid: (d: string) => TraceError): void {
    if (this.segments + n > LIMITS.maxMapSegments) throw invalid(`more than ${LIMITS.maxMapSegments} mapping segments (mappings and the parts protect records split them into) live at once`);
    this.segments += n;
  }

  private fail(kind: TraceErrorKind, offset: number, record: number, detail: string): TraceError {
    return new TraceError(kind, offset, record, detail);
  }
}

/** Whether a mapping's protection allows `need` ('r': read or write access; 'rw': write) on its pages [first, last]. */
function allows(m: LiveMap, first: number, last: number, need: Prot): boolean {
  for (const s of m.segments) {
    if (s.end <= first || s.first > last) continue;
    if (s.prot === 'none' || (need === 'rw' && s.prot !== 'rw')) return false;
  }
  return true;
}

/** Reads the fields of one record's body; running past its end is corruption, not truncation. */
class Cursor {
  private at = 0;
  constructor(private readonly b: Uint8Array, private readonly corrupt: (detail: string) => TraceError) {}

  uint(): number {
    let v = 0;
    let scale = 1;
    for (let n = 0; ; n++) {
      if (this.at >= this.b.length) throw this.corrupt('the record ends inside a field');
      if (n === 8) throw this.corrupt('an integer longer than 8 bytes');
      const byte = this.b[this.at++]!;
      v += (byte & 0x7f) * scale;
      scale *= 0x80;
      if ((byte & 0x80) === 0) break;
    }
    if (v > LIMITS.maxInt) throw this.corrupt(`integer ${v} exceeds 2^53 - 1`);
    return v;
  }

  bytes(n: number): Uint8Array {
    if (n > this.b.length - this.at) throw this.corrupt(`a field of ${n} bytes runs past the record's end`);
    const out = new Uint8Array(this.b.subarray(this.at, this.at + n)); // a copy, and a plain Uint8Array also when fed Buffers
    this.at += n;
    return out;
  }

  string(): string {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(this.bytes(this.uint()));
    } catch (e) {
      if (e instanceof TraceError) throw e;
      throw this.corrupt('a string that is not UTF-8');
    }
  }

  prot(): Prot {
    const code = this.uint();
    const p = PROTS[code];
    if (p === undefined) throw this.corrupt(`protection code ${code} is not 0, 1 or 3`);
    return p;
  }

  data(blobRefAllowed: boolean): Data {
    const kind = this.uint();
    switch (kind) {
      case DATA_KIND.literal: {
        const n = this.uint();
        if (n > LIMITS.maxDataBytes) throw this.corrupt(`payload of ${n} bytes exceeds ${LIMITS.maxDataBytes}`);
        return { kind: 'literal', bytes: this.bytes(n) };
      }
      case DATA_KIND.runs: {
        const unitSize = this.uint();
        if (unitSize < 1 || unitSize > LIMITS.maxRunUnit) throw this.corrupt(`run unit of ${unitSize} bytes outside [1, ${LIMITS.maxRunUnit}]`);
        const runs = this.uint();
        if (runs * (unitSize + 1) > this.b.length - this.at) throw this.corrupt(`${runs} runs do not fit in the record`);
        const counts: number[] = [];
        const units = new Uint8Array(runs * unitSize);
        let total = 0;
        for (let i = 0; i < runs; i++) {
          const n = this.uint();
          if (n < 1) throw this.corrupt('a run of zero units');
          total += n * unitSize;
          if (total > LIMITS.maxDataBytes) throw this.corrupt(`payload exceeds ${LIMITS.maxDataBytes} bytes`);
          counts.push(n);
          units.set(this.bytes(unitSize), i * unitSize);
        }
        return { kind: 'runs', unitSize, counts, units };
      }
      case DATA_KIND.random: {
        const length = this.uint();
        const seed = this.uint();
        if (length > LIMITS.maxDataBytes) throw this.corrupt(`payload of ${length} bytes exceeds ${LIMITS.maxDataBytes}`);
        if (seed < 1 || seed > 0xffffffff) throw this.corrupt(`random seed ${seed} outside [1, 2^32 - 1]`);
        return { kind: 'random', length, seed };
      }
      case DATA_KIND.blob:
        if (!blobRefAllowed) throw this.corrupt('a blob defined by another blob');
        return { kind: 'blob', id: this.uint() };
      default:
        throw this.corrupt(`unknown payload kind ${kind}`);
    }
  }

  done(name: string): void {
    if (this.at !== this.b.length) throw this.corrupt(`${this.b.length - this.at} bytes left over after the ${name} record's fields`);
  }
}

function concatAll(parts: readonly Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Whether `a` could be the beginning of `prefix` (or starts with it). */
function startsLike(a: Uint8Array, prefix: Uint8Array): boolean {
  for (let i = 0; i < Math.min(a.length, prefix.length); i++) if (a[i] !== prefix[i]) return false;
  return true;
}

const GZIP = [0x1f, 0x8b];

function isGzip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === GZIP[0] && b[1] === GZIP[1];
}

/** Decode a whole trace held in memory (gzip-compressed or not); throws TraceError. */
export function decodeTrace(bytes: Uint8Array): { start: TraceStart; events: TraceEvent[]; decoder: TraceDecoder } {
  const decoder = new TraceDecoder();
  const events = [...decodeTraceBytes(bytes, decoder)];
  return { start: decoder.start!, events, decoder };
}

/** The events of a trace held in memory, decoded by `decoder` as they are taken (so its blob table is that of the event). */
export function* decodeTraceBytes(bytes: Uint8Array, decoder: TraceDecoder): Generator<TraceEvent, TraceEnd> {
  let raw = bytes;
  if (isGzip(bytes)) {
    try {
      raw = gunzipSync(bytes, { maxOutputLength: LIMITS.maxInflatedBytes });
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new TraceError('invalid', 0, -1, `gzip: the trace inflates to more than ${LIMITS.maxInflatedBytes} bytes (maxInflatedBytes), the most one held in memory may; read it from a file to stream it`);
      }
      throw gzipError(e as Error, 0);
    }
  }
  for (let at = 0; at < raw.length; at += 1 << 16) yield* decoder.push(raw.subarray(at, at + (1 << 16)));
  return decoder.finish();
}

function gzipError(e: Error & { code?: string }, offset: number): TraceError {
  const truncated = e.code === 'Z_BUF_ERROR' || /unexpected end/i.test(e.message);
  return new TraceError(truncated ? 'truncated' : 'corrupt', offset, -1, `gzip: ${e.message}`);
}

/**
 * Stream a trace file's events (gzip-compressed or not) without holding the
 * file in memory; pass your own decoder to read payload bytes (decoder.bytes)
 * as the events come. Throws TraceError on bad input, after yielding the
 * events before it; a file that cannot be opened throws its fs error.
 */
export async function* readTraceFile(path: string, decoder = new TraceDecoder()): AsyncGenerator<TraceEvent, TraceEnd> {
  const head = Buffer.alloc(2);
  const fd = await open(path, 'r');
  try {
    await fd.read(head, 0, 2, 0);
  } finally {
    await fd.close();
  }
  const gz = isGzip(head);
  const file = createReadStream(path, { highWaterMark: 1 << 16 });
  const source = gz ? file.pipe(createGunzip()) : file;
  let consumed = 0;
  try {
    for await (const chunk of source) {
      yield* decoder.push(chunk as Buffer);
      consumed += (chunk as Buffer).length;
    }
  } catch (e) {
    if (gz && !(e instanceof TraceError) && typeof (e as { errno?: unknown }).errno === 'number') throw gzipError(e as Error, consumed);
    throw e;
  } finally {
    file.destroy();
    source.destroy();
  }
  return decoder.finish();
}
