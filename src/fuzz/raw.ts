// Connections that never become a proper session: raw TCP and WebSocket-level abuse. The device
// must close each of them on its own within its hello timeout, and survive.
import { createConnection, type Socket } from 'node:net';
import type { Rng } from './rng.js';

const UPGRADE = (host: string): string =>
  `GET / HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;

/** Client-to-server WebSocket frames that break RFC 6455 in one way each. */
const BAD_FRAMES: Record<string, number[]> = {
  unmasked: [0x82, 0x01, 0x00],
  rsv1: [0xc2, 0x81, 0, 0, 0, 0, 0x00],
  reservedOpcode: [0x83, 0x80, 0, 0, 0, 0],
  longControl: [0x89, 0xfe, 0x00, 0x7e, 0, 0, 0, 0, ...new Array(126).fill(0)],
  fragmentedPing: [0x09, 0x80, 0, 0, 0, 0],
  badCloseCode: [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe7],
  hugeLength: [0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0],
  lonelyContinuation: [0x80, 0x81, 0, 0, 0, 0, 0x00],
  textNotUtf8: [0x81, 0x81, 0, 0, 0, 0, 0xff],
};

export interface RawOutcome {
  trick: string;
  /** ms until the device closed the connection, or undefined if it did not within the bound. */
  closedAfterMs: number | undefined;
}

/** Runs one raw trick against host:port; resolves when the device closed it or `boundMs` passed. */
export async function rawTrick(rng: Rng, host: string, port: number, boundMs: number): Promise<RawOutcome> {
  const kinds = ['garbage', 'http-no-upgrade', 'partial-headers', 'upgrade-then-silence', 'upgrade-then-abrupt-end', ...Object.keys(BAD_FRAMES)];
  const trick = rng.pick(kinds);
  const sock = createConnection({ host, port });
  sock.on('error', () => {});
  sock.resume(); // read and drop whatever the device answers, so its end of the connection is seen
  const t0 = performance.now();
  const closed = new Promise<number>((resolve) => sock.once('close', () => resolve(performance.now() - t0)));
  await new Promise<void>((resolve) => {
    sock.once('connect', () => resolve());
    sock.once('close', () => resolve());
  });
  if (sock.destroyed) return { trick, closedAfterMs: performance.now() - t0 };
  if (trick === 'garbage') sock.write(rng.bytes(1 + rng.int(200)));
  else if (trick === 'http-no-upgrade') sock.write(`GET /${rng.int(100)} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  else if (trick === 'partial-headers') sock.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websock`);
  else {
    sock.write(UPGRADE(host));
    const upgraded = await switched(sock, boundMs);
    if (upgraded && trick === 'upgrade-then-abrupt-end') sock.end();
    else if (upgraded && trick !== 'upgrade-then-silence') sock.write(Uint8Array.from(BAD_FRAMES[trick]!));
  }
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), boundMs)));
  const closedAfterMs = await Promise.race([closed, bound]);
  clearTimeout(timer);
  sock.destroy();
  return { trick, closedAfterMs };
}

/** Waits for the 101 response; false if the socket closed or the bound passed first. */
function switched(sock: Socket, boundMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let text = '';
    const t = setTimeout(() => done(false), boundMs);
    const onData = (d: Buffer): void => {
      text += d.toString('latin1');
      if (text.includes('\r\n\r\n')) done(text.startsWith('HTTP/1.1 101'));
    };
    const done = (ok: boolean): void => {
      clearTimeout(t);
      sock.off('data', onData);
      resolve(ok);
    };
    sock.on('data', onData);
    sock.once('close', () => done(false));
  });
}
