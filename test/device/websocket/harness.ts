// The endpoint's test harness: an HTTP server whose upgrades go to the chosen implementation.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { acceptWebSockets, type Acceptor } from '../../../device/websocket/acceptor.js';
import type { DeviceSocket, WebSocketImpl } from '../../../device/websocket/socket.js';

/** An HTTP server whose upgrades go to the endpoint; each connection is handed to `onSocket`. */
export class Harness {
  http!: Server;
  acceptor!: Acceptor;
  port = 0;
  onSocket: (s: DeviceSocket) => void = () => {};
  private readonly upgraded = new Set<Duplex>();
  constructor(private readonly impl: WebSocketImpl = 'own') {}
  async start(maxPayload = 1 << 20): Promise<void> {
    this.http = createServer((_q, res) => res.writeHead(426).end());
    this.acceptor = acceptWebSockets(this.http, { impl: this.impl, maxPayload, poison: true, log: () => {} }, (s) => this.onSocket(s));
    // Upgraded sockets are not the HTTP server's to close: kept to cut them in stop(), so a
    // failed test leaves no connection holding the run open.
    this.http.on('upgrade', (_req, socket: Duplex) => this.upgraded.add(socket.once('close', () => this.upgraded.delete(socket))));
    await new Promise<void>((r) => this.http.listen(0, '127.0.0.1', r));
    this.port = (this.http.address() as AddressInfo).port;
  }
  async stop(): Promise<void> {
    for (const socket of this.upgraded) socket.destroy();
    await this.acceptor.close();
    this.http.closeAllConnections();
    await new Promise<void>((r) => this.http.close(() => r()));
  }
  /** The next connection's server socket, and a ws client connected to it. */
  async connect(options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<{ server: DeviceSocket; client: WebSocket }> {
    const server = new Promise<DeviceSocket>((r) => (this.onSocket = r));
    const client = new WebSocket(`ws://127.0.0.1:${this.port}/`, options);
    client.on('error', () => {});
    await new Promise((r, j) => (client.once('open', r), client.once('error', j)));
    return { server: await server, client };
  }
}

/** Echoes every message back, releasing its buffer once sent. */
export function echo(s: DeviceSocket): void {
  s.on('message', (data, isBinary, release) => {
    assert.ok(isBinary);
    s.send(data, () => release());
  });
}

export function closed(s: DeviceSocket): Promise<[number, string]> {
  return new Promise((r) => s.once('close', (code, reason) => r([code, reason])));
}
