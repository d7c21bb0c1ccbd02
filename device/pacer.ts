// Emulated DMA bandwidth: one virtual engine shared by all sessions. A transfer of n bytes
// completes n/bandwidth seconds after the engine becomes free; callers wait only when that
// is at least 1 ms away, so small transfers are not turned into one timer each while the
// long-run rate still matches the bandwidth.

export class Pacer {
  private busyUntil = 0;

  constructor(private readonly bytesPerSecond: number) {}

  /** Whether transfers are paced at all (a bandwidth was set). */
  get paces(): boolean {
    return this.bytesPerSecond > 0;
  }

  /** Books a transfer; returns how many ms the caller should wait before applying it. */
  reserve(bytes: number): number {
    if (this.bytesPerSecond === 0 || bytes === 0) return 0;
    const now = performance.now();
    this.busyUntil = Math.max(now, this.busyUntil) + (bytes * 1000) / this.bytesPerSecond;
    const wait = this.busyUntil - now;
    return wait >= 1 ? wait : 0;
  }

  reset(): void {
    this.busyUntil = 0;
  }
}
