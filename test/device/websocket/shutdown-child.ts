// Child of endpoint.test.ts: a device (implementation from argv) with a session in the middle of
// a message and a connection over maxSessions, neither answering close frames; the device closes
// and the process must then exit on its own.
import { startDevice } from '../../../device/index.js';
import type { WebSocketImpl } from '../../../device/websocket/socket.js';
import { clientFrame, rawConnect } from './frames.js';

const impl = process.argv[2] as WebSocketImpl;
const device = await startDevice({ port: 0, websocket: impl, limits: { maxSessions: 1 } });
const half = clientFrame({ opcode: 2, payload: Buffer.alloc(1 << 19, 1) }).subarray(0, 100_000);
for (let i = 0; i < 2; i++) {
  const c = await rawConnect(device.port);
  c.socket.write(half);
  await new Promise((r) => setTimeout(r, 50));
}
await device.close();
console.log(`closed with ${impl}`);
