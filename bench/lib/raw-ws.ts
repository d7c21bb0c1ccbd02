import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { wsClientOptions } from '../../src/driver/connection.js';

/**
 * The raw WebSocket baseline: the same ws library, options and message sizes
 * as the driver and device, with no protocol work at all (no MessagePack, no
 * copies into a BO, no fences). A message whose first byte is ACK is answered
 * with a reply as long as a `signaled` frame; other messages are only received.
 * Because one connection is ordered, the answer to an ACK message also tells the
 * sender that everything sent before it has arrived.
 */
export const ACK = 1;
const NO_ACK = 0;
/** Size of a `signaled {seq, fence, ok}` frame of the protocol. */
const REPLY_BYTES = 29;

export interface RawServer {
  url: string;
  close(): Promise<void>;
}

/** A raw server on an ephemeral loopback port, configured like the device's (no deflate, same max payload). */
export function startRawServer(maxPayload = 16 << 20): Promise<RawServer> {
  const http = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false, maxPayload, clientTracking: true });
  const reply = new Uint8Array(REPLY_BYTES);
  wss.on('connection', (ws) => {
    ws.on('message', (data: Buffer) => {
      if (data[0] === ACK) ws.send(reply, { binary: true });
    });
  });
  return new Promise((resolve) => {
    http.listen(0, '127.0.0.1', () => {
      const { port } = http.address() as AddressInfo;
      resolve({
        url: `ws://127.0.0.1:${port}`,
        close: async () => {
          for (const c of wss.clients) c.terminate();
          await new Promise<void>((r) => wss.close(() => r()));
          await new Promise<void>((r) => http.close(() => r()));
        },
      });
    });
  });
}

/** The client side, with exactly the driver connection's ws options. */
export class RawClient {
  private readonly answers: Array<() => void> = [];

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', () => this.answers.shift()?.());
  }

  static connect(url: string, zeroMask: boolean): Promise<RawClient> {
    const ws = new WebSocket(url, wsClientOptions({ zeroMask }));
    ws.binaryType = 'nodebuffer';
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new RawClient(ws)));
      ws.once('error', reject);
    });
  }

  /** Send one message of `bytes` bytes and wait for its answer; returns the round trip in ms. */
  async roundTrip(bytes: number): Promise<number> {
    const msg = new Uint8Array(bytes);
    msg[0] = ACK;
    const t0 = performance.now();
    await this.acked(msg);
    return performance.now() - t0;
  }

  /**
   * Send `total` bytes as messages of `size` bytes, keeping at most `window`
   * messages handed to ws but not yet written (the driver's staging buffers),
   * then wait until the server has received them all. Returns seconds.
   * `stop` ends an endless stream (total = Infinity) early.
   */
  async stream(total: number, size: number, window: number, stop: () => boolean = () => false): Promise<number> {
    const msg = new Uint8Array(size);
    msg[0] = NO_ACK;
    let queued = 0;
    let wake: (() => void) | null = null;
    const t0 = performance.now();
    for (let sent = 0; sent < total && !stop(); sent += size) {
      while (queued >= window) await new Promise<void>((r) => (wake = r));
      queued++;
      this.ws.send(msg, { binary: true }, () => {
        queued--;
        wake?.();
        wake = null;
      });
    }
    const end = new Uint8Array(1);
    end[0] = ACK;
    await this.acked(end);
    return (performance.now() - t0) / 1000;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close(1000);
    });
  }

  private acked(msg: Uint8Array): Promise<void> {
    return new Promise<void>((resolve) => {
      this.answers.push(resolve);
      this.ws.send(msg, { binary: true });
    });
  }
}
