/**
 * The trace format, version 1 (docs/trace.md): the constants and the events a
 * trace holds. The writer and the reader share these definitions; nothing else
 * about the byte layout lives outside writer.ts and reader.ts.
 */

/** "VGTRACE" followed by the version byte. */
export const MAGIC = Uint8Array.from([0x56, 0x47, 0x54, 0x52, 0x41, 0x43, 0x45]);
export const VERSION = 1;

/** Record tags. Tags 0x80–0xFE are extensions a reader skips; any other unknown tag is an error. */
export const TAG = {
  start: 0x01,
  bo: 0x02,
  surface: 0x03,
  buffer: 0x04,
  map: 0x05,
  unmap: 0x06,
  protect: 0x07,
  blob: 0x08,
  write: 0x10,
  read: 0x11,
  deviceWrite: 0x12,
  boWrite: 0x13,
  flush: 0x20,
  verify: 0x21,
  think: 0x22,
  end: 0x7f,
} as const;

export const FIRST_EXTENSION_TAG = 0x80;

/** How a payload's bytes are given. */
export const DATA_KIND = { literal: 0, runs: 1, random: 2, blob: 3 } as const;

/** Limits a reader enforces (and a writer respects): they bound what a hostile file can make it allocate. */
export const LIMITS = {
  /** Bytes of one payload, and of one read. */
  maxDataBytes: 16 << 20,
  /** Bytes of one record's body. */
  maxRecordBytes: (16 << 20) + 4096,
  /** Blob ids are below this. */
  blobIds: 1 << 16,
  /**
   * Bytes the blob table may hold in the form the file gives them (a literal's
   * bytes, a run's units plus 8 bytes per run, 16 bytes for a random payload):
   * blobs are kept compact and their bytes made only when an event uses them.
   */
  maxBlobTableBytes: 64 << 20,
  /** Bytes a gzip-compressed trace held in memory may inflate to (a file is streamed instead). */
  maxInflatedBytes: 256 << 20,
  /**
   * Bytes of all BOs, each rounded up to whole pages (one BO is also at most
   * this): what the replayer's simulated memory and the device's session hold.
   */
  maxBoBytes: 256 << 20,
  /** BOs a trace may declare (the device's per-session share). */
  maxBos: 1024,
  /** Surfaces a trace may declare (the device's per-session share). */
  maxSurfaces: 1024,
  /** Bytes per pixel of a surface (the device's limit). */
  maxBytesPerPixel: 16,
  /** Virtual pages of a process's address space: mappings end at or below this many pages. */
  addressSpacePages: 2 ** 27,
  /** Mapping segments (a mapping, plus one per protection change that splits it) live at once. */
  maxMapSegments: 1 << 16,
  /** Longest sleep a replayer takes for one think record, in microseconds (a longer one sleeps this long). */
  maxThinkMicros: 10_000_000,
  /** Unit of a run. */
  maxRunUnit: 64,
  cpus: 64,
  processes: 1024,
  /** Largest integer field (2^53 - 1: exact in a double). */
  maxInt: Number.MAX_SAFE_INTEGER,
} as const;

export type Prot = 'none' | 'r' | 'rw';
/** Protection as written in the file: bit 0 read, bit 1 write. */
export const PROT_CODE: Record<Prot, number> = { none: 0, r: 1, rw: 3 };

/**
 * A payload. `runs`: `units` holds one unit of `unitSize` bytes per run, repeated `counts[i]`
 * times; `random`: `length` bytes of the xorshift32 stream seeded with `seed`; `blob`: the
 * bytes of the latest blob record with that id before the event (the reader sets `resolved`
 * to that blob's payload as it decodes, so a later redefinition of the id does not change the event).
 */
export type Data =
  | { kind: 'literal'; bytes: Uint8Array }
  | { kind: 'runs'; unitSize: number; counts: number[]; units: Uint8Array }
  | { kind: 'random'; length: number; seed: number }
  | { kind: 'blob'; id: number; resolved?: Payload };

/** A payload given in place (not a blob reference): what a blob record holds. */
export type Payload = Exclude<Data, { kind: 'blob' }>;

/** The first record: the machine a trace was taken on and what it is. */
export interface TraceStart {
  pageSize: number;
  cpus: number;
  processes: number;
  description: string;
}

export type TraceEvent =
  | ({ type: 'start' } & TraceStart)
  | { type: 'bo'; bo: number; size: number }
  | { type: 'surface'; bo: number; offset: number; width: number; height: number; bytesPerPixel: number; rowPitch: number }
  | { type: 'buffer'; bo: number; offset: number; size: number }
  | { type: 'map'; map: number; process: number; bo: number; firstPage: number; pages: number; address: number; prot: Prot }
  | { type: 'unmap'; map: number }
  | { type: 'protect'; map: number; firstPage: number; pages: number; prot: Prot }
  | { type: 'blob'; id: number; data: Data }
  | { type: 'write'; cpu: number; process: number; address: number; data: Data }
  | { type: 'read'; cpu: number; process: number; address: number; length: number }
  | { type: 'deviceWrite'; bo: number; offset: number; data: Data }
  /** `via`: the mapping the reader found writable over the bytes (set by the reader; a writer ignores it). */
  | { type: 'boWrite'; cpu: number; bo: number; offset: number; data: Data; via?: number }
  | { type: 'flush' }
  | { type: 'verify' }
  | { type: 'think'; micros: number };

/** The closing record: how many records came before it (start included) and their CRC-32. */
export interface TraceEnd {
  records: number;
  crc32: number;
}

export type TraceEventType = TraceEvent['type'];
