// The in-process device the conformance tests run against: small limits and short timeouts,
// so that every case applies and the whole suite runs in seconds.
import type { DeviceOptions } from '../../device/index.js';

export const TOKEN = 'conformance-token';
export const CONTROL_TOKEN = 'conformance-control-token';

export const SMALL_DEVICE: DeviceOptions = {
  token: TOKEN,
  controlToken: CONTROL_TOKEN,
  helloTimeout: 500,
  // Long enough that a client reading a backlog of pongs under load is not idle (bp.unread-pongs).
  idleTimeout: 4000,
  highWaterMark: 256 * 1024,
  limits: {
    maxBos: 256, maxBoSize: 1 << 20, maxTotalBytes: 4 << 20, maxSurfaces: 64, maxMessageSize: 1 << 20, maxRanges: 1024,
    maxSessions: 24,
  },
};
