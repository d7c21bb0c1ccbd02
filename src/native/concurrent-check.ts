import { Worker } from 'node:worker_threads';
import { PAGE_IS_WRITTEN } from '../core/index.js';
import { LinuxWpMemory } from './linux-memory.js';

/**
 * The deferred-flush race question asked of real hardware: while worker threads
 * store into shared memory, the main thread repeatedly scans-and-protects
 * (PAGEMAP_SCAN with PM_SCAN_WP_MATCHING over PAGE_IS_WRITTEN) and copies the
 * reported pages into a separate "device" copy. After the writers stop and
 * one final scan, the copy must equal memory: every store after a page's
 * protection faults and marks it written, so no store can be missed.
 */

export interface ConcurrentCheckOptions {
  pages: number;
  /** The writer threads store into pages [0, writerPages) (default: all). */
  writerPages?: number;
  writers: number;
  durationMs: number;
  seed: number;
  /**
   * The wrong order, to show the check can fail: find the written pages
   * without protecting them, copy them, then write-protect them
   * (read-then-clear, the lost-update bug peer systems had). A store between
   * the copy and the protection is lost.
   */
  copyBeforeProtect?: boolean;
  /**
   * Called after each harvest's copy while the writers run (with the wrong
   * order: before the protection). A test stores through it to put a store
   * into that window every time, instead of waiting for a thread to hit it.
   */
  afterCopy?: (bytes: Uint8Array, copied: ReadonlyArray<{ start: number; end: number }>) => void;
}

export interface ConcurrentCheckResult {
  scans: number;
  /** Regions and pages the scans reported (and the device copy received). */
  regions: number;
  pagesCopied: number;
  stores: number;
  /** Pages where the device copy differs from memory at the end (empty: coherent). */
  mismatchedPages: number[];
}

const EXIT_TIMEOUT_MS = 10_000;

export async function concurrentCheck(opts: ConcurrentCheckOptions): Promise<ConcurrentCheckResult> {
  const mem = await LinuxWpMemory.open({ pages: opts.pages });
  const workers: Worker[] = [];
  try {
    const ps = mem.pageSize;
    mem.register(0, opts.pages);
    mem.collectWritten();
    const device = new Uint8Array(opts.pages * ps);
    const control = new SharedArrayBuffer(4 * (1 + opts.writers));
    const ctl = new Int32Array(control);
    let scans = 0;
    let regions = 0;
    let pagesCopied = 0;
    const copy = (found: Array<{ start: number; end: number }>): void => {
      for (const r of found) {
        device.set(mem.bytes.subarray(r.start * ps, r.end * ps), r.start * ps);
        pagesCopied += r.end - r.start;
      }
    };
    const harvest = (final: boolean): void => {
      const hook = final ? undefined : opts.afterCopy;
      if (opts.copyBeforeProtect) {
        const found = mem.scan({ start: 0, end: opts.pages, vecLen: opts.pages, categoryMask: PAGE_IS_WRITTEN, returnMask: PAGE_IS_WRITTEN }).regions;
        scans++;
        regions += found.length;
        copy(found);
        hook?.(mem.bytes, found);
        for (const r of found) mem.writeProtect(r.start, r.end - r.start, true);
        return;
      }
      // Scan-and-protect first, then copy: a store after the scan faults and is reported next time.
      const found = mem.collectWritten(4096);
      scans++;
      regions += found.length;
      copy(found);
      hook?.(mem.bytes, found);
    };
    const exits: Array<Promise<void>> = [];
    for (let id = 0; id < opts.writers; id++) {
      const w = new Worker(new URL('./writer-worker.js', import.meta.url), {
        workerData: { id, base: mem.base, length: (opts.writerPages ?? opts.pages) * ps, seed: opts.seed * 31 + id + 1, control },
      });
      workers.push(w);
      exits.push(new Promise((resolve, reject) => {
        w.once('exit', () => resolve());
        w.once('error', reject);
      }));
    }
    // Wait until every writer stores, so the scans overlap real concurrent stores.
    const started = Date.now();
    while (ctl.subarray(1).some((n) => n === 0) && Date.now() - started < EXIT_TIMEOUT_MS) await new Promise((r) => setTimeout(r, 1));
    const until = Date.now() + opts.durationMs;
    while (Date.now() < until) {
      harvest(false);
      // Let the event loop see worker errors now and then.
      if (scans % 64 === 0) await new Promise((r) => setImmediate(r));
    }
    Atomics.store(ctl, 0, 1);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(exits),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('writer threads did not stop')), EXIT_TIMEOUT_MS))),
    ]).finally(() => clearTimeout(timer));
    harvest(true);
    const mismatchedPages: number[] = [];
    const bytes = mem.bytes;
    for (let p = 0; p < opts.pages; p++) {
      const a = bytes.subarray(p * ps, (p + 1) * ps);
      const b = device.subarray(p * ps, (p + 1) * ps);
      if (Buffer.compare(a, b) !== 0) mismatchedPages.push(p);
    }
    let stores = 0;
    for (let id = 0; id < opts.writers; id++) stores += ctl[1 + id]!;
    return { scans, regions, pagesCopied, stores, mismatchedPages };
  } finally {
    for (const w of workers) await w.terminate();
    mem.close();
  }
}
