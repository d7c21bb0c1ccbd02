import { loadAssets } from './assets.js';
import { FrameSampler } from './frame-sampler.js';
import { startUiServer } from './http-server.js';
import { type Published, UpdateChannel } from './update-channel.js';

export interface DashboardOptions {
  /** Port on 127.0.0.1 (default 0: any free port). */
  port?: number;
  /** Least time between two updates to a viewer (default 200 ms). */
  intervalMs?: number;
  log?: (line: string) => void;
}

export interface Dashboard {
  /** http://127.0.0.1:PORT/ */
  readonly url: string;
  /** Pass it as the main job's observer. */
  readonly sampler: FrameSampler;
  /** Send every viewer its update now (the image read afresh); see UpdateChannel.publish. */
  publish(): Promise<Published>;
  readonly viewers: number;
  close(): Promise<void>;
}

/**
 * The live dashboard of `vgpu-dirty run --ui`: the page's server, its update
 * channel and the sampler that watches the run, wired together. At the end
 * of the run, while the device still lives, the framebuffer is read one last
 * time (FrameSampler.end) and sent, so the page keeps the run's final state.
 */
export async function startDashboard(opts: DashboardOptions = {}): Promise<Dashboard> {
  const sampler = new FrameSampler({ image: true, log: opts.log });
  const channel = new UpdateChannel(sampler, { intervalMs: opts.intervalMs, log: opts.log });
  const server = await startUiServer({
    port: opts.port ?? 0,
    assets: loadAssets(),
    upgradePath: '/updates',
    onUpgrade: (req, socket, head) => channel.handleUpgrade(req, socket, head),
  }).catch(async (e: unknown) => {
    await channel.close();
    throw e;
  });
  // The final state goes out before the device closes; a viewer that comes later gets it too.
  sampler.onEnd(async () => {
    await channel.publish();
  });
  return {
    url: server.url,
    sampler,
    publish: () => channel.publish(),
    get viewers() {
      return channel.viewerCount;
    },
    async close() {
      await channel.close();
      await server.close();
    },
  };
}
