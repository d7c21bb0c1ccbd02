import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { VgpuError } from '../core/index.js';
import type { Asset } from './assets.js';

export interface UiServerOptions {
  /** Port on 127.0.0.1; 0 picks a free one. */
  port: number;
  assets: Map<string, Asset>;
  /** Path whose WebSocket upgrades go to onUpgrade; every other upgrade is refused. */
  upgradePath: string;
  onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void;
}

export interface UiServer {
  /** http://127.0.0.1:PORT/ */
  readonly url: string;
  readonly port: number;
  /** Stop listening and drop every connection; resolves when the server is closed. */
  close(): Promise<void>;
}

/** The dashboard's port is taken or not allowed. */
export class UiListenError extends VgpuError {}

/**
 * The dashboard's HTTP server: loopback only, GET of a fixed set of files
 * held in memory (no path ever reaches the file system), and the WebSocket
 * upgrade of the update channel. Requests must name this server in Host (and
 * upgrades come from its own page, by Origin), so a web page elsewhere cannot
 * reach it through a rebound DNS name.
 */
export async function startUiServer(opts: UiServerOptions): Promise<UiServer> {
  const sockets = new Set<Socket>();
  let port = 0;
  const allowedHosts = () => [`127.0.0.1:${port}`, `localhost:${port}`];
  const server = createServer((req, res) => serve(req, res, opts.assets, allowedHosts(), port));
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('clientError', (_err, socket: Socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const origin = req.headers.origin;
    const okOrigin = origin === undefined || allowedHosts().some((h) => origin === `http://${h}`);
    if (pathOf(req.url) !== opts.upgradePath || !allowedHosts().includes(req.headers.host ?? '') || !okOrigin) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return;
    }
    opts.onUpgrade(req, socket, head);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new UiListenError(e.code ?? 'ELISTEN', `dashboard cannot listen on 127.0.0.1:${opts.port}: ${e.code ?? e.message}`)));
    server.listen(opts.port, '127.0.0.1', () => resolve());
  });
  server.on('error', () => {}); // after listen, errors are per connection and handled there
  port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

function pathOf(url: string | undefined): string {
  const q = (url ?? '/').indexOf('?');
  return q < 0 ? (url ?? '/') : url!.slice(0, q);
}

function serve(req: IncomingMessage, res: ServerResponse, assets: Map<string, Asset>, hosts: string[], port: number): void {
  if (!hosts.includes(req.headers.host ?? '')) return void send(res, 403, 'forbidden host\n');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return void send(res, 405, 'method not allowed\n');
  }
  const asset = assets.get(pathOf(req.url));
  if (asset === undefined) return void send(res, 404, 'not found\n');
  res.writeHead(200, {
    'Content-Type': asset.type,
    'Content-Length': asset.body.length,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    // Everything the page uses is served from here; no other host is ever contacted.
    'Content-Security-Policy': `default-src 'self'; connect-src ws://127.0.0.1:${port} ws://localhost:${port}; img-src 'self' data:`,
  });
  res.end(req.method === 'HEAD' ? undefined : asset.body);
}

function send(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
