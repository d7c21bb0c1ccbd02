import { Child } from './children.js';
import { CLI_MAIN } from './paths.js';

export interface DeviceProcess {
  url: string;
  child: Child;
}

/**
 * `vgpu-dirty device` in its own process on an ephemeral loopback port,
 * exactly as a user starts it; `flags` are its command-line options.
 */
export async function startDeviceProcess(flags: readonly string[] = []): Promise<DeviceProcess> {
  const child = new Child('device', CLI_MAIN, ['device', '--host', '127.0.0.1', '--port', '0', '--quiet', ...flags]);
  try {
    const url = (await child.waitFor('listening on ')).trim();
    return { url, child };
  } catch (e) {
    await child.close();
    throw e;
  }
}
