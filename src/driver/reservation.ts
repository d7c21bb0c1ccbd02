import { WouldDeadlockError } from '../core/index.js';

/**
 * A buffer object's reservation (its dma_resv lock): the dirty tracker's scans, method switches and harvests hold it, and
 * the fault and mkwrite handlers take it, so a CPU write can never land in the
 * middle of a scan's view of the BO. It waits or retries instead.
 *
 * The simulator is synchronous: whoever takes the reservation releases it
 * before returning, unless it is suspended at a step point (a scan inside a
 * helper walk). A fault that finds it held asks for a retry with the promise
 * of its release (VM_FAULT_RETRY); kernel code that finds it held would wait
 * for itself, which is a WouldDeadlockError here. Uncontended, it allocates
 * nothing.
 */
export class Reservation {
  private holder: string | null = null;
  private waiters: Array<() => void> = [];

  get held(): boolean {
    return this.holder !== null;
  }

  /** What holds it ('scan', 'mkwrite', ...), or null. */
  get heldBy(): string | null {
    return this.holder;
  }

  /** Take it for `who`; it must be free. */
  reserve(who: string): void {
    if (this.holder !== null) throw new WouldDeadlockError(`BO reservation wanted by ${who} is held by ${this.holder}`);
    this.holder = who;
  }

  unreserve(): void {
    this.holder = null;
    if (this.waiters.length > 0) for (const w of this.waiters.splice(0)) w();
  }

  /** Settles when the reservation is next released (at once when it is free). */
  released(): Promise<void> {
    if (this.holder === null) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * Set the holder directly, dropping any waiters: for returning a simulation
   * to a saved point (src/check), never for locking.
   */
  restoreHolder(holder: string | null): void {
    this.holder = holder;
    this.waiters.length = 0;
  }

  /** Run fn holding the reservation. */
  hold<T>(who: string, fn: () => T): T {
    this.reserve(who);
    try {
      return fn();
    } finally {
      this.unreserve();
    }
  }
}
