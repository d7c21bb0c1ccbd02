import type { DeviceConnection, Outgoing } from './connection.js';
import { Definition } from './definition.js';
import { DeviceError } from './errors.js';

interface Pending {
  cmd: Outgoing;
  /** For messages: "destroyBo BO 3". */
  command: string;
  /** Refusals in a row and the backoff, as for defines. */
  retry: Definition;
}

/**
 * Destroys the device refused. The driver has forgotten those objects, but the
 * device still holds them and their memory (a refused destroySurface also
 * makes its BO's destroy fail with in_use), so on a device with tight limits
 * every later define would be refused for good. They are sent again, in their
 * order and with the define backoff, before the next round. A destroy the
 * device answers with unknown_bo / unknown_surface has nothing left to do; a
 * new session knows none of them.
 */
export class RefusedDestroys {
  private pending: Pending[] = [];

  constructor(private readonly conn: DeviceConnection, private readonly log?: (line: string) => void) {}

  get size(): number {
    return this.pending.length;
  }

  /** Send a destroy (when a session is open: a lost session took the object with it) and follow it. */
  send(cmd: Outgoing, command: string, retry = new Definition()): void {
    if (!this.conn.isOpen) return;
    const seq = this.conn.send(cmd);
    retry.sent();
    this.conn.watch(seq, {
      failed: (e) => {
        if (e.code === 'unknown_bo' || e.code === 'unknown_surface') return;
        this.log?.(`device refused ${command}: ${e.detail}`);
        retry.refuse(new DeviceError(e.code, e.detail, e.seq, command));
        this.pending.push({ cmd, command, retry });
      },
    });
  }

  /** Send again, in order, every refused destroy whose backoff ran out. */
  resendDue(): void {
    if (this.pending.length === 0 || !this.conn.isOpen) return;
    const now = performance.now();
    const due = this.pending.filter((p) => p.retry.dueForRetry(now));
    this.pending = this.pending.filter((p) => !p.retry.dueForRetry(now));
    for (const p of due) this.send(p.cmd, p.command, p.retry);
  }

  /** A new device session holds none of them. */
  clear(): void {
    this.pending = [];
  }
}
