// Records every binary frame the device receives, in memory and/or to a log file, so tests
// can inspect traffic and a replay tool can re-send it. Log file format (all big-endian):
//   magic "VGPULOG1" (8 bytes), then per frame a 16-byte header
//   u32 frame length · u32 session id · f64 ms since the device started
//   followed by the frame bytes exactly as received (one MessagePack message).
// File writes are synchronous: bounded memory and records in arrival order, at the cost of
// blocking on a slow disk (this is a test facility; leave it off for benchmarks).
import { closeSync, openSync, writevSync } from 'node:fs';

export const LOG_MAGIC = 'VGPULOG1';
const HEADER_BYTES = 16;

export interface LogEntry {
  session: number;
  /** ms since the device started. */
  time: number;
  frame: Uint8Array;
}

export class Recorder {
  readonly entries: LogEntry[] = [];
  private fd: number | undefined;
  private readonly t0 = performance.now();

  constructor(
    private readonly memory: boolean,
    file: string | undefined,
  ) {
    if (file !== undefined) {
      this.fd = openSync(file, 'w');
      writevSync(this.fd, [Buffer.from(LOG_MAGIC, 'latin1')]);
    }
  }

  get active(): boolean {
    return this.memory || this.fd !== undefined;
  }

  /**
   * `frame` is only borrowed (a receive buffer goes back to its pool once the command is
   * applied): kept in memory, it is copied; written to the file, it is written at once.
   */
  record(session: number, frame: Uint8Array): void {
    const time = performance.now() - this.t0;
    if (this.memory) this.entries.push({ session, time, frame: Buffer.from(frame) });
    if (this.fd !== undefined) writevSync(this.fd, [recordHeader({ session, time, frame }), frame]);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** A whole log (magic and records) holding these entries, e.g. a fuzzer's failing case. */
export function writeLog(entries: readonly LogEntry[]): Uint8Array {
  return Buffer.concat([Buffer.from(LOG_MAGIC, 'latin1'), ...entries.flatMap((e) => [recordHeader(e), e.frame])]);
}

function recordHeader(e: LogEntry): Buffer {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32BE(e.frame.length, 0);
  header.writeUInt32BE(e.session, 4);
  header.writeDoubleBE(e.time, 8);
  return header;
}

/** Parses a log file's bytes; throws RangeError on a bad magic or a truncated record. */
export function readLog(bytes: Uint8Array): LogEntry[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < LOG_MAGIC.length || buf.toString('latin1', 0, LOG_MAGIC.length) !== LOG_MAGIC) {
    throw new RangeError(`not a ${LOG_MAGIC} log`);
  }
  const out: LogEntry[] = [];
  let at = LOG_MAGIC.length;
  while (at < buf.length) {
    if (at + HEADER_BYTES > buf.length) throw new RangeError(`truncated record header at byte ${at}`);
    const length = buf.readUInt32BE(at);
    const end = at + HEADER_BYTES + length;
    if (end > buf.length) throw new RangeError(`truncated record at byte ${at}`);
    out.push({ session: buf.readUInt32BE(at + 4), time: buf.readDoubleBE(at + 8), frame: buf.subarray(at + HEADER_BYTES, end) });
    at = end;
  }
  return out;
}
