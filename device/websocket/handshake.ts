// The opening handshake of the device's WebSocket endpoint (RFC 6455 §4.2), checked as ws's
// server checks it and as strictly as the RFC asks: a GET of HTTP/1.1 or later (ws does not
// check the version), `Upgrade: websocket`, `Connection` with the `upgrade` token,
// `Sec-WebSocket-Version: 13`, a `Sec-WebSocket-Key` that is base64 of 16 bytes. Extension
// offers are ignored (none are negotiated); of the subprotocols a client offers, the first is
// echoed (ws's choice without a handleProtocols hook), and a malformed list is refused.
import { createHash } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** Base64 of 16 bytes: 22 characters and the padding. */
const KEY = /^[+/0-9A-Za-z]{22}==$/;
/** RFC 7230 token characters (a subprotocol is a token). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** An acceptable upgrade: what the 101 response needs. */
export interface Accepted {
  key: string;
  protocol: string | undefined;
}

/** A refused upgrade: the HTTP status, a body, extra headers. */
export interface Refused {
  status: number;
  message: string;
  headers?: Record<string, string>;
}

/** Checks an upgrade request. */
export function checkUpgrade(req: IncomingMessage): Accepted | Refused {
  if (req.method !== 'GET') return { status: 405, message: 'Invalid HTTP method', headers: { Allow: 'GET' } };
  if (req.httpVersionMajor < 1 || (req.httpVersionMajor === 1 && req.httpVersionMinor < 1)) return { status: 400, message: 'HTTP/1.1 or later required' };
  if (req.headers.upgrade?.toLowerCase() !== 'websocket') return { status: 400, message: 'Invalid Upgrade header' };
  const connection = req.headers.connection ?? '';
  if (!connection.split(',').some((t) => t.trim().toLowerCase() === 'upgrade')) return { status: 400, message: 'Invalid Connection header' };
  const key = req.headers['sec-websocket-key'];
  if (key === undefined || !KEY.test(key)) return { status: 400, message: 'Missing or invalid Sec-WebSocket-Key header' };
  if (req.headers['sec-websocket-version'] !== '13') {
    return { status: 400, message: 'Missing or invalid Sec-WebSocket-Version header', headers: { 'Sec-WebSocket-Version': '13' } };
  }
  const offered = req.headers['sec-websocket-protocol'];
  let protocol: string | undefined;
  if (offered !== undefined) {
    const protocols = offered.split(',').map((p) => p.trim());
    if (protocols.some((p) => !TOKEN.test(p)) || new Set(protocols).size !== protocols.length) {
      return { status: 400, message: 'Invalid Sec-WebSocket-Protocol header' };
    }
    protocol = protocols[0];
  }
  return { key, protocol };
}

/** The accept value for a key: base64 of SHA-1 of the key and the RFC's GUID. */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** The 101 response completing the handshake. */
export function acceptResponse(a: Accepted): string {
  const lines = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${acceptKey(a.key)}`];
  if (a.protocol !== undefined) lines.push(`Sec-WebSocket-Protocol: ${a.protocol}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Answers a refused upgrade and closes the socket once the answer is written. */
export function refuse(socket: Duplex, r: Refused): void {
  const headers: Record<string, string | number> = {
    Connection: 'close',
    'Content-Type': 'text/plain',
    'Content-Length': Buffer.byteLength(r.message),
    ...r.headers,
  };
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${r.status} ${STATUS_CODES[r.status]}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n${r.message}`);
}
