// Child of endpoint.test.ts: serves three connections (closed by the server, by the client, cut),
// then closes its server without exiting explicitly. The test expects it to exit on its own.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import { acceptWebSockets } from '../../../device/websocket/acceptor.js';
import type { DeviceSocket } from '../../../device/websocket/socket.js';

const http = createServer();
let next: (s: DeviceSocket) => void = () => {};
const acceptor = acceptWebSockets(http, { impl: 'own', maxPayload: 1 << 20, poison: false, log: () => {} }, (s) => next(s));
await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;

async function connection(end: (server: DeviceSocket, client: WebSocket) => void): Promise<void> {
  const server = new Promise<DeviceSocket>((r) => (next = r));
  const client = new WebSocket(url);
  client.on('error', () => {});
  await new Promise((r) => client.once('open', r));
  const s = await server;
  s.on('message', (_d, _b, release) => release());
  client.send(Buffer.alloc(100_000));
  const closed = new Promise((r) => s.once('close', r));
  end(s, client);
  await closed;
}

await connection((s) => s.close(1000, 'server'));
await connection((_s, c) => c.close(1000, 'client'));
await connection((s) => s.terminate());
await acceptor.close();
await new Promise<void>((r) => http.close(() => r()));
console.log('served 3 connections');
