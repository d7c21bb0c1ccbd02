import { VgpuError } from '../core/index.js';

/** The device reported a failed command; a fence after it rejects with this. */
export class DeviceError extends VgpuError {
  constructor(code: string, message: string, readonly seq: number | undefined) {
    super(code, `device error ${code}${seq !== undefined ? ` (seq ${seq})` : ''}: ${message}`);
  }
}

/** The connection to the device closed before the reply or fence arrived. */
export class DeviceLostError extends VgpuError {
  constructor(message: string) {
    super('EDEVLOST', message);
  }
}

/** The driver (or its writeback engine) was closed while the operation was pending. */
export class CancelledError extends VgpuError {
  constructor(message: string) {
    super('ECANCELED', message);
  }
}
