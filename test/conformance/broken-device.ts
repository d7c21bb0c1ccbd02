// A deliberately broken device for tests: a WebSocket proxy in front of the real device that
// changes what crosses it. The real device does all the work; each defect is a small frame
// rewrite, so the broken device is the project's device with exactly one thing wrong.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { decodeDeviceFrame, decodeDriverFrame, Encoder, ProtocolError, type DeviceMessage, type DriverMessage } from '../../protocol/index.js';

/** What a defect can do with a frame: pass it on, drop it, or send other frames either way. */
export interface Link {
  toDevice(frame: Uint8Array): void;
  toClient(frame: Uint8Array): void;
  /** Close the client's connection with this code and reason (the device's is cut). */
  closeClient(code: number, reason: string): void;
  readonly encoder: Encoder;
}

export interface Defect {
  /** A frame from the client; default: forward it. */
  fromClient?(frame: Uint8Array, msg: DriverMessage | ProtocolError, link: Link): void;
  /** A frame from the device; default: forward it. */
  fromDevice?(frame: Uint8Array, msg: DeviceMessage | ProtocolError, link: Link): void;
}

export interface BrokenDevice {
  url: string;
  close(): Promise<void>;
}

export async function startBrokenDevice(deviceUrl: string, defect: Defect): Promise<BrokenDevice> {
  const http: Server = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false, maxPayload: 256 << 20 });
  const sockets = new Set<WebSocket>();
  wss.on('connection', (client) => {
    const device = new WebSocket(deviceUrl, { perMessageDeflate: false, maxPayload: 256 << 20 });
    sockets.add(client).add(device);
    const pending: Uint8Array[] = [];
    const encoder = new Encoder();
    let closedByDefect = false;
    const link: Link = {
      encoder,
      toDevice: (f) => (device.readyState === WebSocket.OPEN ? device.send(f) : pending.push(f)),
      toClient: (f) => client.readyState === WebSocket.OPEN && client.send(f),
      closeClient: (code, reason) => {
        closedByDefect = true;
        client.close(code, reason);
        device.terminate();
      },
    };
    device.on('open', () => pending.splice(0).forEach((f) => device.send(f)));
    client.on('message', (data: Buffer, isBinary) => {
      if (!isBinary) return device.readyState === WebSocket.OPEN && device.send(data.toString());
      if (defect.fromClient) defect.fromClient(data, decodeDriverFrame(data), link);
      else link.toDevice(data);
    });
    device.on('message', (data: Buffer) => {
      if (defect.fromDevice) defect.fromDevice(data, decodeDeviceFrame(data), link);
      else link.toClient(data);
    });
    // Closes travel through with their code and reason; a cut stays a cut.
    device.on('close', (code, reason) => {
      if (closedByDefect) return;
      if (code === 1005 || code === 1006) client.terminate();
      else client.close(code, reason.toString());
    });
    client.on('close', () => device.readyState === WebSocket.CONNECTING ? device.terminate() : device.close());
    client.on('error', () => {});
    device.on('error', () => client.terminate());
    client.on('close', () => sockets.delete(client));
    device.on('close', () => sockets.delete(device));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}`,
    async close() {
      for (const s of sockets) s.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

/** Signals every fence as soon as it arrives, ok, before the commands ahead of it are applied. */
export const earlyFence: Defect = {
  fromClient(frame, msg, link) {
    if (msg instanceof ProtocolError || !(msg.op === 'fence' || ((msg.op === 'write' || msg.op === 'writeSurface') && msg.fence !== undefined))) {
      return link.toDevice(frame);
    }
    link.toClient(link.encoder.encode({ op: 'signaled', seq: msg.seq, fence: msg.fence!, ok: true }));
    if (msg.op !== 'fence') link.toDevice(link.encoder.encode({ ...msg, fence: undefined }));
  },
};

/**
 * Applies a multi-range write range by range: all ranges but the last go ahead as a write of
 * their own, so a rejected last range leaves the others applied. Seqs are doubled on the way
 * to the device (the extra write takes the odd one) and halved on the way back.
 */
export const nonAtomicWrite: Defect = {
  fromClient(frame, msg, link) {
    if (msg instanceof ProtocolError || msg.op === 'hello') return link.toDevice(frame);
    if (msg.op === 'write' && msg.ranges.length > 1) {
      link.toDevice(link.encoder.encode({ ...msg, seq: 2 * msg.seq - 1, ranges: msg.ranges.slice(0, -1), fence: undefined }));
      link.toDevice(link.encoder.encode({ ...msg, seq: 2 * msg.seq, ranges: msg.ranges.slice(-1) }));
      return;
    }
    link.toDevice(link.encoder.encode({ ...msg, seq: 2 * msg.seq }));
  },
  fromDevice(frame, msg, link) {
    if (msg instanceof ProtocolError || !('seq' in msg) || msg.seq === undefined) return link.toClient(frame);
    if (msg.seq % 2 === 1) return; // the extra write's own replies
    const back: Record<string, unknown> = { ...msg, seq: msg.seq / 2 };
    if (msg.op === 'signaled' && msg.errSeq !== undefined) back['errSeq'] = Math.ceil(msg.errSeq / 2);
    link.toClient(link.encoder.encode(back as unknown as DeviceMessage));
  },
};
