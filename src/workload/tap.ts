import type { DataRange } from '../../protocol/index.js';
import type { Mm } from '../core/index.js';
import type { DeviceWriter } from './gpu-actor.js';
import type { MainJobObserver } from './main-job.js';

/**
 * Sees every memory access of the main job's workload as it is made (a trace
 * recorder, src/trace): the CPUs' writes and the device-side writes, plus
 * the observer hooks for the run's objects, its flushes and verifications.
 * It must not change what it is shown.
 */
export interface WorkloadTap extends MainJobObserver {
  /** CPU `cpu` is about to write `data` at `address` of process `mm`. */
  cpuWrite(cpu: number, mm: Mm, address: number, data: Uint8Array): void;
  /** The device is about to write `ranges` into BO `bo` (driver BO ids). */
  deviceWrite(bo: number, ranges: readonly DataRange[]): void;
}

/** The device writer that shows every write to the tap first. */
export function tappedWriter(writer: DeviceWriter, tap: WorkloadTap): DeviceWriter {
  return {
    write(bo, ranges) {
      tap.deviceWrite(bo, ranges);
      return writer.write(bo, ranges);
    },
    close: () => writer.close(),
  };
}

/** Call both observers' hooks, `first` first; a hook's promise is awaited before the next hook runs. */
export function bothObservers(first: MainJobObserver | undefined, second: MainJobObserver): MainJobObserver {
  if (first === undefined) return second;
  const seq = <A extends unknown[]>(a?: (...x: A) => void | Promise<void>, b?: (...x: A) => void | Promise<void>) =>
    async (...x: A): Promise<void> => {
      await a?.(...x);
      await b?.(...x);
    };
  return {
    start: seq(first.start?.bind(first), second.start?.bind(second)),
    frame: seq(first.frame?.bind(first), second.frame?.bind(second)),
    flush: seq(first.flush?.bind(first), second.flush?.bind(second)),
    verified: (v) => {
      first.verified?.(v);
      second.verified?.(v);
    },
    end: seq(first.end?.bind(first), second.end?.bind(second)),
  };
}
