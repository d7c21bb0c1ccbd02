import type { Device } from '../../device/index.js';
import type { StatsData } from '../../protocol/index.js';
import { DeviceConnection } from '../driver/connection.js';
import type { Driver } from '../driver/driver.js';
import { until, within } from './bounded.js';
import { FAULT_KINDS, type FaultKind, type FaultSpec } from './program.js';

/**
 * Turns the program's fault steps into the device's facilities: Faults
 * (failNth, dropAfter, delayFences, stall), Device.restart, and a second
 * session (the hog) that takes the device's free memory. Faults of one
 * session are scoped to the driver's session of the moment, so the hog's own
 * commands never absorb them.
 */
export class FaultInjector {
  readonly injected = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  stalled = false;
  private hog: DeviceConnection | null = null;

  constructor(
    private readonly device: Device,
    private readonly driver: Driver,
    private readonly hangMs: number,
  ) {}

  async arm(f: FaultSpec): Promise<void> {
    const { faults } = this.device;
    const session = this.driver.conn.welcome?.session;
    const scope = session === undefined ? {} : { session };
    this.injected[f.kind]++;
    switch (f.kind) {
      case 'failNth':
      case 'refuseDefine':
      case 'refuseDestroy':
        faults.failNth(f.kind === 'failNth' ? f.n : 1, scope);
        return;
      case 'dropAfter':
        faults.dropAfter(f.n, scope);
        return;
      case 'delayFences':
        faults.delayFences(f.ms, { ...scope, count: f.count });
        return;
      case 'stall':
        faults.stall(scope);
        this.stalled = true;
        return;
      case 'silence':
        // Never released for this session: only the driver's fence timeout gets it out.
        faults.stall(scope);
        return;
      case 'restart':
        await within(this.device.restart(), this.hangMs, 'device restart');
        this.stalled = false; // restart clears every fault and ends the hog's session too
        await this.unhog();
        return;
      case 'hog':
        await this.startHog(f.slackPages);
        return;
      case 'refuseResync':
        // The next session is not known yet: the countdown is device-wide, and only the driver talks until it fires.
        faults.failNth(f.n);
        faults.dropAfter(1, scope);
        return;
    }
  }

  /** The device applies commands again. */
  release(): void {
    if (!this.stalled) return;
    this.device.faults.release();
    this.stalled = false;
  }

  /** The hog gives its memory back; resolves once the device has ended its session. */
  async unhog(): Promise<void> {
    const hog = this.hog;
    if (hog === null) return;
    this.hog = null;
    const id = hog.welcome?.session;
    await within(hog.close(), this.hangMs, 'hog close');
    await until(() => id === undefined || this.device.session(id) === undefined, this.hangMs, 'the device to end the hog\'s session');
  }

  /** Faults stop: nothing armed, nothing stalled, no memory held by others. */
  async calm(): Promise<void> {
    this.release();
    this.device.faults.clear();
    await this.unhog();
  }

  /** Another session defines one BO holding all the device's free memory but `slackPages` pages. */
  private async startHog(slackPages: number): Promise<void> {
    const hog = new DeviceConnection({ url: this.device.url, reconnect: false, name: 'soak hog' });
    this.hog = hog;
    await within(hog.connect(), this.hangMs, 'hog connect');
    // A device-wide failNth (refuseResync) may refuse the hog's commands: it then holds nothing.
    const stats = await within(hog.request<StatsData>({ op: 'stats' }).catch(() => null), this.hangMs, 'hog stats');
    if (stats === null) return;
    const { maxTotalBytes, maxBoSize } = this.device.options.limits;
    const size = Math.min(maxBoSize, maxTotalBytes - stats.deviceBytes - slackPages * this.device.options.pageSize);
    if (size < 1) return;
    hog.send({ op: 'defineBo', bo: 1, size });
    // The hog's fence: its define has been applied (or refused) before the program goes on.
    await within(hog.fence().catch(() => undefined), this.hangMs, 'hog define');
  }
}
