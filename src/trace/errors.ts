import { VgpuError } from '../core/errors.js';

/**
 * Why a trace was refused:
 *  - `bad-magic`: not a trace (or not version 1's magic);
 *  - `unsupported-version`: a version this reader does not know;
 *  - `truncated`: the bytes end inside a record, or before the end record;
 *  - `corrupt`: a record that cannot be what it claims (a length or a value
 *    out of range, a body longer or shorter than its fields, an unknown tag,
 *    bytes after the end record, a bad gzip stream);
 *  - `checksum`: the end record's count or CRC-32 does not match the records;
 *  - `invalid`: well formed, but the events contradict each other (an
 *    undeclared BO, mapping, process, CPU or blob; a second start record).
 */
export type TraceErrorKind = 'bad-magic' | 'unsupported-version' | 'truncated' | 'corrupt' | 'checksum' | 'invalid';

/** A trace that cannot be read: what is wrong and where (byte offset in the uncompressed stream, record index). */
export class TraceError extends VgpuError {
  constructor(
    readonly kind: TraceErrorKind,
    readonly offset: number,
    /** Index of the record at fault (0 is the start record); -1 for the header. */
    readonly record: number,
    detail: string,
  ) {
    super('ETRACE', `trace ${kind} at byte ${offset}${record >= 0 ? ` (record ${record})` : ''}: ${detail}`);
  }
}
