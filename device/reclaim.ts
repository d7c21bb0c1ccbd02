// Frees dead receive buffers promptly. Every socket read arrives in a fresh buffer (64 KiB at
// most), and with the ws implementation every message in one more; once processed they are
// garbage, but V8 frees an ArrayBuffer's memory only when a GC finds it dead, and a device
// allocates almost no JS objects per frame, so no young-generation GC comes for a long time:
// dead buffers pile up until the external-memory heuristic (tens of MiB) forces a full GC. A
// young-generation GC (about 0.2 ms here) after every RECLAIM_EVERY_BYTES received frees them.
// The device's own endpoint reuses its message buffers, but the reads still need this: measured
// while streaming 256 MiB BOs (docs/performance.md), without it the device's peak RSS rose from
// 343 to 362 MiB and its CPU time doubled (fresh memory page-faults). Shorter intervals lower the
// peak (every 8, 4, 2 MiB: about 337, 332, 325 MiB) for more young-generation GCs, whose cost
// stayed within the noise of CPU profiles at these sizes; 4 MiB keeps a margin to the
// 1.1 × BO + 64 MiB target without the most frequent GCs.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Received bytes between two young-generation GCs. */
export const RECLAIM_EVERY_BYTES = 4 << 20;

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
