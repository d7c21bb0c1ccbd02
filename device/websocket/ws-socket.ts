// ws as the carrier of a device connection, behind the same interface as the device's own
// endpoint (selected with DeviceOptions.websocket = 'ws', e.g. to compare the two in the bench).
// ws gives every message a buffer of its own, so release is a no-op.
import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import { cutReason, isValidCloseCode } from './close.js';
import type { DeviceSocket } from './socket.js';

const noop = (): void => {};

export class WsDeviceSocket extends EventEmitter implements DeviceSocket {
  constructor(private readonly ws: WebSocket) {
    super();
    ws.on('message', (data, isBinary) => this.emit('message', data as Buffer, isBinary, noop));
    ws.on('close', (code, reason) => this.emit('close', code, reason.toString()));
    // Always listened to: a socket error must never become an uncaught 'error' event.
    ws.on('error', (err) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }
  send(data: Uint8Array, done: (err?: Error | null) => void): void {
    this.ws.send(data, { binary: true }, done);
  }
  close(code: number, reason: string): void {
    // ws throws on a code that may not be sent; like the own endpoint, send no code instead.
    if (isValidCloseCode(code)) this.ws.close(code, cutReason(reason));
    else this.ws.close();
  }
  terminate(): void {
    this.ws.terminate();
  }
  pause(): void {
    this.ws.pause();
  }
  resume(): void {
    this.ws.resume();
  }
}
