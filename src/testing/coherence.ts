import { VgpuError } from '../core/index.js';
import type { Bo } from '../driver/bo.js';
import type { CoherenceReport, Driver } from '../driver/driver.js';
import { DeviceError, DeviceLostError, IncompleteFlushError } from '../driver/errors.js';
import { waitFor } from './wait-for.js';
import type { ReadbackData } from '../../protocol/index.js';

/** The device's copy of a BO differs from guest memory. */
export class CoherenceError extends VgpuError {
  constructor(
    message: string,
    /** BO pages that differ. */
    readonly differing: readonly number[],
    /** First differing byte (BO offset), with both values, when the device's bytes could be read. */
    readonly first: { offset: number; guest: number; device: number } | null,
  ) {
    super('EINCOHERENT', message);
  }
}

/** Where expectCoherent reads the device's bytes of a differing page: in process, or over the wire (readback). */
export type DeviceBytes = (bo: Bo, offset: number, length: number) => Promise<Uint8Array>;

/**
 * Assert that the device holds exactly guest memory's bytes of `bo` (at a
 * fence: it flushes first). The driver repairs the copy by itself after a
 * fault, so a flush that fails (or a session still reconnecting) is retried,
 * up to `attempts` flushes within `timeout` ms; a copy that differs is not.
 * On failure throws CoherenceError naming the differing pages and the first
 * differing byte with both values.
 */
export async function expectCoherent(
  driver: Driver, bo: Bo, deviceBytes: DeviceBytes = readOverWire(driver), { attempts = 5, timeout = 10_000 } = {},
): Promise<void> {
  const deadline = performance.now() + timeout;
  let report: CoherenceReport;
  for (let attempt = 1; ; attempt++) {
    try {
      await waitFor(() => driver.conn.isOpen, { timeout: Math.max(1, deadline - performance.now()), what: 'a device session' });
      report = await driver.verifyCoherent(bo);
      break;
    } catch (e) {
      if (!(e instanceof DeviceError || e instanceof DeviceLostError || e instanceof IncompleteFlushError) || attempt >= attempts) throw e;
      await new Promise((r) => setTimeout(r, 20 * attempt));
    }
  }
  if (report.ok) return;
  const ps = driver.machine.pageSize;
  const page = report.differing[0]!;
  const length = Math.min(ps, bo.size - page * ps);
  let first: CoherenceError['first'] = null;
  try {
    const device = await deviceBytes(bo, page * ps, length);
    const guest = new Uint8Array(length);
    bo.copyOut(page * ps, guest, 0, length);
    const i = guest.findIndex((v, j) => v !== device[j]);
    if (i >= 0) first = { offset: page * ps + i, guest: guest[i]!, device: device[i]! };
  } catch {
    // The digests already say which pages differ; the byte is a courtesy.
  }
  const shown = report.differing.slice(0, 16).join(', ') + (report.differing.length > 16 ? ', …' : '');
  const byte = first === null ? '' : `; first difference at byte ${first.offset} (page ${page} + ${first.offset - page * ps}): guest 0x${hex(first.guest)}, device 0x${hex(first.device)}`;
  throw new CoherenceError(`BO ${bo.id}: ${report.differing.length} of ${bo.pages} pages differ from the device copy: [${shown}]${byte}`, report.differing, first);
}

/** Read device bytes with the protocol's readback over the driver's own connection. */
export function readOverWire(driver: Driver): DeviceBytes {
  return async (bo, offset, length) => {
    const reply = await driver.conn.request<ReadbackData>({ op: 'readback', bo: bo.id, ranges: [[offset, length]] });
    return reply.ranges[0]![1];
  };
}

function hex(v: number): string {
  return v.toString(16).padStart(2, '0');
}
