// One valid example of every message, shared by the protocol tests.
import type { DeviceMessage, DriverMessage } from '../../protocol/index.js';

const bin = (...bytes: number[]): Buffer => Buffer.from(bytes);

export const DRIVER_EXAMPLES: DriverMessage[] = [
  { op: 'hello', min: 1, max: 2, token: 's3cret', role: 'driver', name: 'example' },
  { op: 'defineBo', seq: 1, bo: 7, size: 65536 },
  { op: 'destroyBo', seq: 2, bo: 7 },
  {
    op: 'defineSurface', seq: 3, sid: 2, bo: 7, offset: 0, width: 16, height: 8, depth: 1,
    bytesPerPixel: 4, rowPitch: 64, imagePitch: 512,
  },
  { op: 'destroySurface', seq: 4, sid: 2 },
  { op: 'write', seq: 5, bo: 7, ranges: [[0, bin(1, 2, 3)], [4096, bin(4)]] },
  { op: 'writeSurface', seq: 6, sid: 2, boxes: [[1, 2, 0, 1, 1, 1, bin(9, 9, 9, 9)]] },
  { op: 'readback', seq: 7, bo: 7, ranges: [[0, 16], [8192, 4]] },
  { op: 'gpuWrite', seq: 8, bo: 7, ranges: [[100, bin(0xff)]], session: 3 },
  { op: 'fence', seq: 9, fence: 2 ** 40 },
  { op: 'digest', seq: 10, bo: 7, offset: 4096, length: 8192 },
  { op: 'stats', seq: 11 },
  { op: 'ping', seq: 2 ** 33 },
];

export const DEVICE_EXAMPLES: DeviceMessage[] = [
  {
    op: 'welcome', version: 1, session: 3, pageSize: 4096, features: ['surfaces', 'digest'],
    maxBos: 4096, maxBoSize: 268435456, maxTotalBytes: 8 * 2 ** 30, maxSurfaces: 4096,
    maxMessageSize: 16777216, maxRanges: 16384,
  },
  { op: 'signaled', seq: 9, fence: 2, ok: true },
  { op: 'signaled', seq: 12, fence: 3, ok: false, errors: 2, code: 'unknown_bo', message: 'no BO 8', errSeq: 10 },
  { op: 'readbackData', seq: 7, bo: 7, ranges: [[0, bin(1, 2)], [8192, bin()]] },
  { op: 'digestData', seq: 10, bo: 7, offset: 4096, pageSize: 4096, hashes: bin(1, 2, 3, 4, 5, 6, 7, 8) },
  {
    op: 'statsData', seq: 11, bos: 1, surfaces: 0, bytes: 65536, commands: 10, failed: 0, fences: 1,
    bytesWritten: 5 * 2 ** 32, bytesRead: 20, sessions: 2, deviceBos: 3, deviceBytes: 196608,
  },
  { op: 'deviceWrite', bo: 7, ranges: [[100, bin(0xff)]] },
  { op: 'pong', seq: 11 },
  { op: 'error', code: 'out_of_range', message: 'range 0 [65530, 65540) outside BO of 65536 bytes', seq: 5 },
  { op: 'error', code: 'bad_message', message: 'message is not a map (got array(0))' },
];
