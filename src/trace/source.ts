import type { TraceEvent, TraceStart } from './format.js';
import { decodeTraceBytes, readTraceFile, TraceDecoder } from './reader.js';

/** A trace: a file (streamed, gzip or not) or its bytes in memory. */
export type TraceSource = string | Uint8Array;

/** What a full pass over a trace found, before anything is replayed. */
export interface TraceSummary {
  start: TraceStart;
  /** Bytes of all BOs the trace declares, each rounded up to whole pages (at most LIMITS.maxBoBytes). */
  boBytes: number;
  /** Flush records: the frames. */
  frames: number;
  /** CPU writes, device-side writes and reads. */
  accesses: number;
  records: number;
}

/**
 * Read the whole trace once, checking every record (TraceError on the first
 * fault, also where the trace exceeds what a replay can hold: LIMITS), and
 * summarise it: a replay never starts on a trace it cannot finish reading. A file is streamed, not held in memory.
 */
export async function inspectTrace(source: TraceSource): Promise<TraceSummary> {
  let boBytes = 0;
  let frames = 0;
  let accesses = 0;
  const decoder = new TraceDecoder();
  let records = 0;
  for await (const e of traceEvents(source, decoder)) {
    records++;
    if (e.type === 'bo') boBytes += Math.ceil(e.size / decoder.start!.pageSize) * decoder.start!.pageSize;
    else if (e.type === 'flush') frames++;
    else if (e.type === 'write' || e.type === 'boWrite' || e.type === 'deviceWrite' || e.type === 'read') accesses++;
  }
  return { start: decoder.start!, boBytes, frames, accesses, records };
}

/** The events of a trace in order, decoded by `decoder` (which then gives their payloads' bytes). */
export async function* traceEvents(source: TraceSource, decoder: TraceDecoder): AsyncGenerator<TraceEvent> {
  if (typeof source === 'string') {
    yield* readTraceFile(source, decoder);
    return;
  }
  yield* decodeTraceBytes(source, decoder);
}
