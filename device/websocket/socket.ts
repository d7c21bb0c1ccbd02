// The one interface the device's sessions and server use for a client connection, whichever
// WebSocket implementation carries it (endpoint.ts, the device's own; ws-socket.ts, ws).

/** Receives a data message; `release` gives its buffer back (call once done with `data`). */
export type MessageListener = (data: Buffer, isBinary: boolean, release: () => void) => void;

export interface DeviceSocket {
  /** Bytes handed to send() (and control frames) that the socket has not written yet. */
  readonly bufferedAmount: number;
  on(event: 'message', listener: MessageListener): this;
  /** Exactly once, when the connection is gone: the peer's close code (1006 if it sent none). */
  on(event: 'close', listener: (code: number, reason: string) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  once(event: 'close', listener: (code: number, reason: string) => void): this;
  /** Sends one binary message; `done` runs once the socket took it, with an error if it could not. */
  send(data: Uint8Array, done: (err?: Error | null) => void): void;
  /** Starts the close handshake (a close frame with `code` and `reason`, at most 123 bytes). */
  close(code: number, reason: string): void;
  /** Cuts the connection at once (no close frame). */
  terminate(): void;
  /** Stops delivering messages and reading the socket (TCP pushes back on the client). */
  pause(): void;
  resume(): void;
}

/** Which implementation carries the device's connections. */
export type WebSocketImpl = 'own' | 'ws';
export const WEBSOCKET_IMPLS: readonly WebSocketImpl[] = ['own', 'ws'];
