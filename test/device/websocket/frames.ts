// Client frames as bytes, for the endpoint's tests (any header field may be made wrong).
import { connect, type Socket } from 'node:net';

export interface FrameSpec {
  opcode: number;
  payload?: Uint8Array;
  fin?: boolean;
  /** Mask key; null sends the frame unmasked. Default a fixed non-zero key. */
  key?: Uint8Array | null;
  rsv?: number;
  /** Force a length form: 7-bit, 16-bit or 64-bit (with `high` as the top 32 bits). */
  lengthForm?: 7 | 16 | 64;
  high?: number;
}

export const KEY = Uint8Array.of(0x37, 0xfa, 0x21, 0x3d);

/** A client frame's bytes: header, then the payload masked with the key. */
export function clientFrame(f: FrameSpec): Buffer {
  const payload = f.payload ?? new Uint8Array(0);
  const key = f.key === undefined ? KEY : f.key;
  const n = payload.length;
  const form = f.lengthForm ?? (n < 126 ? 7 : n < 0x10000 ? 16 : 64);
  const ext = form === 7 ? 0 : form === 16 ? 2 : 8;
  const out = Buffer.alloc(2 + ext + (key ? 4 : 0) + n);
  out[0] = ((f.fin ?? true) ? 0x80 : 0) | ((f.rsv ?? 0) << 4) | f.opcode;
  out[1] = (key ? 0x80 : 0) | (form === 7 ? n : form === 16 ? 126 : 127);
  if (form === 16) out.writeUInt16BE(n, 2);
  if (form === 64) {
    out.writeUInt32BE(f.high ?? Math.floor(n / 2 ** 32), 2);
    out.writeUInt32BE(n >>> 0, 6);
  }
  let at = 2 + ext;
  if (key) {
    out.set(key, at);
    at += 4;
  }
  for (let i = 0; i < n; i++) out[at + i] = payload[i]! ^ (key ? key[i & 3]! : 0);
  return out;
}

export function closeFrame(code: number | undefined, reason = '', key?: Uint8Array | null): Buffer {
  const payload = code === undefined ? Buffer.alloc(0) : Buffer.concat([Buffer.of(code >> 8, code & 0xff), Buffer.from(reason)]);
  return clientFrame({ opcode: 8, payload, key });
}

/** The frames a server sent (unmasked), parsed from its bytes. */
export function serverFrames(bytes: Buffer): { opcode: number; payload: Buffer }[] {
  const out: { opcode: number; payload: Buffer }[] = [];
  let at = 0;
  while (at + 2 <= bytes.length) {
    let n = bytes[at + 1]! & 0x7f;
    let h = 2;
    if (n === 126) {
      n = bytes.readUInt16BE(at + 2);
      h = 4;
    } else if (n === 127) {
      n = Number(bytes.readBigUInt64BE(at + 2));
      h = 10;
    }
    if (at + h + n > bytes.length) break;
    out.push({ opcode: bytes[at]! & 0x0f, payload: bytes.subarray(at + h, at + h + n) });
    at += h + n;
  }
  return out;
}

export const UPGRADE_LINES = [
  'GET / HTTP/1.1',
  'Host: 127.0.0.1',
  'Upgrade: websocket',
  'Connection: Upgrade',
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
  'Sec-WebSocket-Version: 13',
];

/**
 * A raw TCP client: sends `request` (lines joined with CRLF), then `after` once the response
 * headers arrived; resolves with everything the server sent until it closed (bounded).
 */
export function rawExchange(port: number, request: string[], after: Buffer[] = [], timeoutMs = 5000): Promise<{ head: string; body: Buffer; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s: Socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let sent = false;
    const timer = setTimeout(() => {
      s.destroy();
      finish(false);
    }, timeoutMs);
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      resolve({ head: end < 0 ? all.toString('latin1') : all.subarray(0, end).toString('latin1'), body: end < 0 ? Buffer.alloc(0) : all.subarray(end + 4), closed });
    };
    s.on('error', reject);
    let answered = false;
    s.on('data', (c) => {
      chunks.push(c);
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (!sent && end >= 0) {
        sent = true;
        for (const b of after) s.write(b);
      }
      // Answer the server's close frame as a client does, so the server ends the connection.
      const close = end >= 0 && all.subarray(0, 12).toString('latin1').includes(' 101 ') ? serverFrames(all.subarray(end + 4)).find((f) => f.opcode === 8) : undefined;
      if (close !== undefined && !answered && s.writable) {
        answered = true;
        s.write(clientFrame({ opcode: 8, payload: close.payload.subarray(0, 2) }));
      }
    });
    s.on('close', () => finish(true));
    s.write(`${request.join('\r\n')}\r\n\r\n`);
  });
}

/** A raw TCP client past the handshake: its socket, everything the server sent since, and its end. */
export interface RawClient {
  socket: Socket;
  /** Server bytes after the 101 response so far. */
  received(): Buffer;
  /** Resolves when the socket has closed. */
  closed: Promise<void>;
}

/** Connects, sends the upgrade request (and `pipelined` bytes in the same write) and waits for the 101. */
export function rawConnect(port: number, pipelined: Buffer = Buffer.alloc(0)): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let headEnd = -1;
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('error', () => {});
    socket.once('close', () => reject(new Error('closed before the 101 response')));
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      if (headEnd >= 0) return;
      const all = Buffer.concat(chunks);
      headEnd = all.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      if (!all.subarray(0, 13).toString('latin1').includes(' 101')) return reject(new Error(all.toString('latin1')));
      resolve({ socket, received: () => Buffer.concat(chunks).subarray(headEnd + 4), closed });
    });
    socket.write(Buffer.concat([Buffer.from(`${UPGRADE_LINES.join('\r\n')}\r\n\r\n`), pipelined]));
  });
}
