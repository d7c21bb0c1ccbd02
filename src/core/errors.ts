/**
 * Typed errors of the simulated memory-management core. Every rejection of bad
 * input is one of these, raised before any state changes.
 */
export class VgpuError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A caller passed an argument outside the documented domain. */
export class InvalidArgumentError extends VgpuError {
  constructor(message: string) {
    super('EINVAL', message);
  }
}

/** Physical memory, VA space or a table pool is exhausted. */
export class OutOfMemoryError extends VgpuError {
  constructor(message: string) {
    super('ENOMEM', message);
  }
}

/** Base of the two signal-like outcomes of a CPU access. */
export class MemoryFaultError extends VgpuError {
  constructor(
    code: 'SIGSEGV' | 'SIGBUS',
    message: string,
    readonly cpu: number,
    readonly address: number,
    readonly write: boolean,
  ) {
    super(code, message);
  }
}

/** Access outside any VMA, or against the VMA's protection. */
export class SegvError extends MemoryFaultError {
  constructor(message: string, cpu: number, address: number, write: boolean) {
    super('SIGSEGV', message, cpu, address, write);
  }
}

/** A fault handler refused the access (out of the object, mkwrite refused, ...). */
export class BusError extends MemoryFaultError {
  constructor(message: string, cpu: number, address: number, write: boolean) {
    super('SIGBUS', message, cpu, address, write);
  }
}

/**
 * The access could not complete now: a fault handler asked to retry later
 * (an external lock such as the BO reservation is held, or a readback is in
 * flight), or the page-table lock is held by a walker suspended at a step point.
 * Nothing was performed on the page that blocked; a multi-page access may have
 * written the pages before it (retrying the whole access is idempotent, which
 * is what writeAsync does). `until`, when present, settles when a retry can
 * make progress.
 */
export class AccessBlockedError extends VgpuError {
  constructor(
    readonly reason: 'mkwrite' | 'fault' | 'ptl' | 'userfault',
    readonly cpu: number,
    readonly address: number,
    readonly write: boolean,
    readonly until: Promise<unknown> | null,
  ) {
    super('EAGAIN', `cpu${cpu} ${write ? 'write' : 'read'} at 0x${address.toString(16)} blocked (${reason})`);
  }
}

/** An operation would have to wait for a lock held by the code that called it. */
export class WouldDeadlockError extends VgpuError {
  constructor(message: string) {
    super('EDEADLK', message);
  }
}

export function requireInteger(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
}
