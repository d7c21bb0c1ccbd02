import type { Device } from '../../device/index.js';
import type { DataRange } from '../../protocol/index.js';
import { DeviceConnection } from '../driver/connection.js';
import type { Driver } from '../driver/driver.js';

/** How the device is made to write a BO of the driver's session, as a GPU would. */
export interface DeviceWriter {
  /** Apply `ranges` to BO `bo` on the device; resolves once the device applied them. */
  write(bo: number, ranges: DataRange[]): Promise<void>;
  close(): Promise<void>;
}

/** The embedded device: write straight into the driver's current session. */
export function inProcessWriter(device: Device, driver: Driver): DeviceWriter {
  return {
    write(bo, ranges) {
      const session = driver.conn.welcome?.session;
      const view = session === undefined ? undefined : device.session(session);
      if (view === undefined) return Promise.reject(new Error('the driver has no device session'));
      view.gpuWrite(bo, ranges);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
}

/**
 * A device reached over the wire: a second connection with role 'control'
 * (the device must announce the `control` feature) sends gpuWrite for the
 * driver's session, then a fence, so the write has been applied on return.
 */
export async function controlWriter(url: string, token: string | undefined, driver: Driver): Promise<DeviceWriter> {
  const conn = new DeviceConnection({ url, token, role: 'control', name: 'vgpu-dirty gpu actor', reconnect: true });
  const welcome = await conn.connect();
  if (!welcome.features.includes('control') || !welcome.features.includes('gpuWrite')) {
    await conn.close();
    throw new Error('the device does not accept control connections or gpuWrite (start it with --control-token)');
  }
  return {
    async write(bo, ranges) {
      const session = driver.conn.welcome?.session;
      if (session === undefined) throw new Error('the driver has no device session');
      await conn.ready();
      conn.send({ op: 'gpuWrite', session, bo, ranges });
      await conn.fence();
    },
    close: () => conn.close(),
  };
}

/**
 * The GPU of the main job: now and then the device itself renders a
 * heads-up box into the framebuffer, where the CPUs' sprite also passes, so
 * every run exercises read coherence (announcement, zap, readback, CPU
 * accesses that wait for it).
 */
export class GpuActor {
  /** Device-side writes made. */
  writes = 0;
  private readonly row: Uint8Array;

  constructor(
    private readonly writer: DeviceWriter,
    private readonly fb: { bo: number; pitch: number; bytesPerPixel: number },
    private readonly box = { x: 1600, y: 560, w: 256, h: 96 },
  ) {
    this.row = new Uint8Array(box.w * fb.bytesPerPixel);
  }

  /** Render frame f's box: one range per row. */
  async render(f: number): Promise<void> {
    const { x, y, w, h } = this.box;
    const bpp = this.fb.bytesPerPixel;
    const ranges: DataRange[] = [];
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        const lit = ((c + f * 3) >> 4) % 2 === ((r + f) >> 4) % 2;
        this.row.fill(lit ? 0xe0 : 0x30, c * bpp, (c + 1) * bpp);
      }
      ranges.push([(y + r) * this.fb.pitch + x * bpp, this.row.slice()]);
    }
    await this.writer.write(this.fb.bo, ranges);
    this.writes++;
  }

  close(): Promise<void> {
    return this.writer.close();
  }
}
