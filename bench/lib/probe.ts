import { BoDirtyTracker, Driver } from '../../src/index.js';

/**
 * Instrumentation of runMainJob from outside (it returns a report but exposes
 * neither its driver nor scan times): while installed, remembers the last
 * driver Driver.connect created and sums the wall time of every tracker scan.
 * Wrapping costs one performance.now pair per scan, a few per frame.
 */
export class MainJobProbe {
  driver: Driver | null = null;
  scanMs = 0;
  private restore: (() => void) | null = null;

  install(): this {
    const connect = Driver.connect;
    const scan = BoDirtyTracker.prototype.scan;
    const probe = this;
    Driver.connect = async function (this: typeof Driver, options) {
      probe.driver = await connect.call(this, options);
      return probe.driver;
    };
    BoDirtyTracker.prototype.scan = function (this: BoDirtyTracker) {
      const t0 = performance.now();
      try {
        return scan.call(this);
      } finally {
        probe.scanMs += performance.now() - t0;
      }
    };
    this.restore = () => {
      Driver.connect = connect;
      BoDirtyTracker.prototype.scan = scan;
    };
    return this;
  }

  uninstall(): void {
    this.restore?.();
    this.restore = null;
  }

  /** Forget what the previous run captured. */
  reset(): void {
    this.driver = null;
    this.scanMs = 0;
  }
}
