import type { Bitmap } from '../../core/index.js';
import type { DirtyStrategy, DirtyTracker, ScanReport } from './contract.js';
import { DirtyRecord } from './record.js';

/**
 * No tracking at all: every scan declares the whole BO dirty, so every
 * writeback round uploads every resource in full. The baseline the other
 * strategies' bytes are measured against; PTEs stay writable, no fault
 * beyond the first touch.
 */
class FullTracker extends DirtyRecord implements DirtyTracker {
  readonly method = 'full';
  readonly switches = 0;

  mapWritable(): boolean {
    return true;
  }

  mkwrite(): void {}

  scan(): ScanReport {
    this.markDirty(0, this.pages);
    return { found: this.pages, switchedTo: null };
  }

  beforeUnmap(): void {}

  /** Everything, always: whatever was written since the last round is somewhere in it. */
  override peekDirty(out: Bitmap): void {
    out.setRange(0, this.pages);
  }
}

export const fullStrategy: DirtyStrategy = {
  name: 'full',
  description: 'no tracking: every round uploads every resource whole (the baseline)',
  realMemory: true,
  createTracker: (bo) => new FullTracker(bo.pages),
};
