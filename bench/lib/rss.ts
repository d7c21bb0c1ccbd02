import { readFileSync, writeFileSync } from 'node:fs';

/**
 * Peak resident set size (VmHWM) of a process, in bytes, from /proc; pid
 * 'self' for this one. Returns NaN where /proc is missing (not Linux), so a
 * scenario reports "no numbers" instead of a wrong one.
 */
export function peakRss(pid: number | 'self' = 'self'): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/**
 * Reset the peak to the current RSS (Linux ≥ 4.0: write 5 to clear_refs), so
 * each run's peak is its own. Returns false when not allowed; the peak then
 * covers the process's life so far, which only overstates it.
 */
export function resetPeakRss(pid: number | 'self' = 'self'): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}
