// Public surface of the fake device (see docs/protocol.md, "Device").
export { startDevice, type Device } from './server.js';
export { resolveOptions, parseSize, type DeviceOptions, type DeviceLimits, type ResolvedOptions } from './options.js';
export type { SessionView, Counters } from './session.js';
export type { Surface } from './store.js';
export { Faults, type Scope } from './faults.js';
export { readLog, writeLog, LOG_MAGIC, type LogEntry } from './recorder.js';
export { WEBSOCKET_IMPLS, type WebSocketImpl } from './websocket/socket.js';
