import type { DeviceError } from './errors.js';

/** Retry delay after the nth consecutive refusal: the first retry goes out with the next round. */
const RETRY_MS = [0, 50, 100, 200, 400, 800, 1600];

/**
 * Whether the device knows an object (a BO or a surface), as far as the driver
 * can tell. A define is taken as applied until the device refuses it; a
 * refused object uploads nothing (every write to it would fail) until it has
 * been defined again, which the driver does before its next upload, backing
 * off while the device keeps refusing.
 */
export class Definition {
  /** The device's refusal of the last define sent, or null while it stands. */
  refusal: DeviceError | null = null;
  /** Refusals in a row; reset when a define is applied. */
  failures = 0;
  /** When (performance.now()) the next define may go out after a refusal. */
  retryAt = 0;

  get refused(): boolean {
    return this.refusal !== null;
  }

  /** A define was sent (again): the object stands unless the device refuses it. */
  sent(): void {
    this.refusal = null;
  }

  /** The device refused the define. */
  refuse(err: DeviceError): void {
    this.refusal = err;
    this.retryAt = performance.now() + RETRY_MS[Math.min(this.failures, RETRY_MS.length - 1)]!;
    this.failures++;
  }

  applied(): void {
    if (this.refusal === null) this.failures = 0;
  }

  /** A refused object whose backoff has run out. */
  dueForRetry(now: number): boolean {
    return this.refusal !== null && now >= this.retryAt;
  }
}
