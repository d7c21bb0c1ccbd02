// One client that sends pings and never reads (the outside campaign's worst finding): how much
// memory does the device hold for it? Pre-framed pings go straight to the socket, as fast as
// the socket takes them (the client keeps at most 4 MiB unsent).
import { WireClient } from '../conformance/client.js';
import { pingFrames, socketOf } from '../conformance/raw-frames.js';
import type { DeviceProcess } from './device-process.js';

export interface FloodResult {
  pings: number;
  rssBefore: number;
  rssPeak: number;
  rssEnd: number;
  /** 3 s after the client left. */
  rssAfter: number;
}

export async function pingFlood(device: DeviceProcess, token: string | undefined, seconds: number): Promise<FloodResult> {
  const rssBefore = device.rss();
  const c = await WireClient.session(device.url, { token, name: 'ping flood' });
  c.pauseReading();
  const sock = socketOf(c);
  let seq = 1;
  let rssPeak = rssBefore;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000 && !c.isClosed) {
    if (sock.writableLength < 4 << 20) {
      sock.write(pingFrames(seq, 4096));
      seq += 4096;
    }
    rssPeak = Math.max(rssPeak, device.rss());
    await new Promise((r) => setTimeout(r, 5));
  }
  const rssEnd = device.rss();
  c.terminate();
  await new Promise((r) => setTimeout(r, 3000));
  return { pings: seq - 1, rssBefore, rssPeak, rssEnd, rssAfter: device.rss() };
}
