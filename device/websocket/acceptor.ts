// Accepts WebSocket connections on the device's HTTP server with the chosen implementation
// and hands each one to the device as a DeviceSocket.
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import { MessageBufferPool } from './buffer-pool.js';
import { ServerWebSocket } from './endpoint.js';
import { acceptResponse, checkUpgrade, refuse } from './handshake.js';
import type { DeviceSocket, WebSocketImpl } from './socket.js';
import { WsDeviceSocket } from './ws-socket.js';

export interface AcceptOptions {
  impl: WebSocketImpl;
  /** Largest message accepted (close 1009 beyond it). */
  maxPayload: number;
  /** Fill released receive buffers with a poison byte (own only; a use-after-release check). */
  poison: boolean;
  log: (line: string) => void;
}

export interface Acceptor {
  /** Stops accepting; open connections are the caller's to close. */
  close(): Promise<void>;
}

export function acceptWebSockets(http: Server, options: AcceptOptions, onSocket: (socket: DeviceSocket) => void): Acceptor {
  return options.impl === 'ws' ? acceptWithWs(http, options, onSocket) : acceptOwn(http, options, onSocket);
}

function acceptOwn(http: Server, options: AcceptOptions, onSocket: (socket: DeviceSocket) => void): Acceptor {
  const pool = new MessageBufferPool({ poison: options.poison });
  const onUpgrade = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    const onError = (err: Error): void => options.log(`upgrade socket error: ${err.message}`);
    socket.on('error', onError);
    const verdict = checkUpgrade(req);
    if ('status' in verdict) {
      options.log(`refused an upgrade: ${verdict.status} ${verdict.message}`);
      return refuse(socket, verdict);
    }
    // A client that already sent FIN (or a socket already gone) gets no connection.
    if (!socket.readable || !socket.writable) return void socket.destroy();
    socket.off('error', onError);
    socket.write(acceptResponse(verdict));
    onSocket(new ServerWebSocket(socket, head, pool, options.maxPayload));
  };
  http.on('upgrade', onUpgrade);
  return {
    close: () => {
      http.off('upgrade', onUpgrade);
      pool.close();
      return Promise.resolve();
    },
  };
}

function acceptWithWs(http: Server, options: AcceptOptions, onSocket: (socket: DeviceSocket) => void): Acceptor {
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false, maxPayload: options.maxPayload, clientTracking: false });
  wss.on('connection', (ws) => onSocket(new WsDeviceSocket(ws)));
  wss.on('error', (err) => options.log(`server error: ${err.message}`));
  return { close: () => new Promise<void>((resolve) => wss.close(() => resolve())) };
}
