import { VgpuError } from '../core/index.js';

/**
 * The device refused a command. `seq` is the refused command's, when the device
 * named it; `command` says which of ours it was (e.g. "write BO 3") when the
 * driver knows.
 */
export class DeviceError extends VgpuError {
  /** The device's own words. */
  readonly detail: string;
  constructor(code: string, detail: string, readonly seq: number | undefined, readonly command?: string) {
    super(code, `device error ${code}${command !== undefined ? ` on ${command}` : ''}${seq !== undefined ? ` (seq ${seq})` : ''}: ${detail}`);
    this.detail = detail;
  }
}

/** The connection to the device closed (or was given up) before the reply or fence arrived. */
export class DeviceLostError extends VgpuError {
  constructor(message: string) {
    super('EDEVLOST', message);
  }
}

/**
 * The device refused the session for good (`bad_token`, `version_unsupported`,
 * `forbidden`): retrying cannot help, so the connection stops trying.
 */
export class DeviceRefusedError extends VgpuError {
  constructor(readonly reason: string, message: string) {
    super('EREFUSED', `device refused the connection: ${reason}: ${message}`);
  }
}

/** connect() gave up: no session within its timeout or attempt limit. */
export class ConnectTimeoutError extends VgpuError {
  constructor(message: string) {
    super('ETIMEDOUT', message);
  }
}

/**
 * A flush could not upload everything it had to, although the device refused
 * nothing: pages the device changed wait for a readback that has not landed.
 * What was not uploaded stays dirty for the next flush.
 */
export class IncompleteFlushError extends VgpuError {
  constructor(message: string) {
    super('EAGAIN', message);
  }
}

/** The driver (or its writeback engine) was closed while the operation was pending. */
export class CancelledError extends VgpuError {
  constructor(message: string) {
    super('ECANCELED', message);
  }
}
