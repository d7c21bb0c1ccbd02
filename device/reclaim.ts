// Frees received frames promptly. ws gives every message a buffer of its own (and the socket one
// per read); once applied they are garbage, but V8 frees an ArrayBuffer's memory only when a GC
// finds it dead, and a device allocates almost no JS objects per frame, so no young-generation
// GC comes for a long time: dead frame buffers pile up until the external-memory heuristic
// (tens of MiB) forces a full GC. A device streaming a 256 MiB BO held ~50 MiB of them. A
// young-generation GC (about 0.2 ms here) after every RECLAIM_EVERY_BYTES received frees them,
// so dead frames hold about twice that at most (the message buffers and the socket reads).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Received bytes between two young-generation GCs. */
export const RECLAIM_EVERY_BYTES = 8 << 20;

type Gc = (options?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

/**
 * V8's gc() without starting Node with --expose-gc: the flag set at run time exposes it to a
 * new context (the documented use of v8.setFlagsFromString), and this process's own `gc`, if
 * any, is left as it was. null when that does not work on this runtime: frames are then freed
 * by V8's own schedule.
 */
function exposeGc(): Gc | null {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('typeof gc === "function" ? gc : null') as Gc | null;
    return typeof gc === 'function' ? gc : null;
  } catch {
    return null;
  }
}

let gc: Gc | null | undefined;

/** Counts received bytes and runs a young-generation GC after every RECLAIM_EVERY_BYTES. */
export class FrameReclaimer {
  private received = 0;

  constructor(private readonly everyBytes = RECLAIM_EVERY_BYTES) {}

  onReceived(bytes: number): void {
    this.received += bytes;
    if (this.received < this.everyBytes) return;
    this.received = 0;
    gc ??= exposeGc();
    gc?.({ type: 'minor' });
  }
}
