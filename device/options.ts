// Device options, their defaults and validation. resolveOptions throws RangeError/TypeError
// with a message fit for a CLI user; everything downstream trusts ResolvedOptions.
import {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_LIMITS,
  DEFAULT_MAX_SESSIONS,
  DEFAULT_PAGE_SIZE,
  defaultSessionLimits,
  FEATURES,
  U32_MAX,
  type Feature,
  type Limits,
  type SessionLimits,
} from '../protocol/index.js';
import { WEBSOCKET_IMPLS, type WebSocketImpl } from './websocket/socket.js';

/** Environment variable that turns DeviceOptions.poisonReleasedFrames on by default ('1'). */
export const POISON_ENV = 'VGPU_DEVICE_POISON_FRAMES';

/** Everything a device limits: the device-wide limits and how they are shared between sessions. */
export type DeviceLimits = Limits & SessionLimits;

export interface DeviceOptions {
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** TCP port; 0 (default) picks an ephemeral one. */
  port?: number;
  /** When set, a driver's hello must carry this token (else close 1008). */
  token?: string;
  /**
   * Accept role 'control' connections (cross-session gpuWrite) whose hello carries this token;
   * it must differ from `token`. Without it no control session is accepted.
   */
  controlToken?: string;
  /** Device-wide limits and per-session shares; shares default to a quarter (see defaultSessionLimits). */
  limits?: Partial<DeviceLimits>;
  /** Features to offer (default: all of FEATURES). Ops of the others are answered unknown_op. */
  features?: readonly Feature[];
  /** Page size of digests (default 4096). */
  pageSize?: number;
  /** Emulated DMA bandwidth in bytes/s shared by all sessions; 0 (default) = unlimited. */
  bandwidth?: number;
  /** Added between a fence being reached and its signal being sent, in ms (default 0). */
  fenceLatency?: number;
  /**
   * A session stops reading its socket while its unapplied commands plus unsent replies exceed
   * this many bytes, and resumes below half of it (default 8 MiB).
   */
  highWaterMark?: number;
  /** Connections that send no hello within this many ms are closed with 1002 (default 10000). */
  helloTimeout?: number;
  /**
   * A session that sends no frame for this many ms while the device owes it nothing is closed
   * with error `idle`, close 1001 (default 60000; 0 = never). Announced in welcome.
   */
  idleTimeout?: number;
  /** Keep every received frame in memory (device.log). Default false. */
  record?: boolean;
  /** Append every received frame to this file (format in docs/protocol.md). */
  logFile?: string;
  /** Receives one line per notable event (connections, closes, errors). Default: discard. */
  log?: (line: string) => void;
  /**
   * The WebSocket implementation carrying connections: 'own' (default), the device's endpoint
   * that unmasks each message into a reusable buffer, or 'ws' (the ws library's server).
   */
  websocket?: WebSocketImpl;
  /**
   * Diagnostic: fill every received message's buffer with a poison byte once the session gives
   * it back, so that any later read of it shows (with websocket 'own'). Default: on when the
   * environment variable VGPU_DEVICE_POISON_FRAMES is '1'.
   */
  poisonReleasedFrames?: boolean;
}

export interface ResolvedOptions {
  host: string;
  port: number;
  token: string | undefined;
  controlToken: string | undefined;
  limits: DeviceLimits;
  features: Feature[];
  pageSize: number;
  bandwidth: number;
  fenceLatency: number;
  highWaterMark: number;
  helloTimeout: number;
  idleTimeout: number;
  record: boolean;
  logFile: string | undefined;
  log: (line: string) => void;
  websocket: WebSocketImpl;
  poisonReleasedFrames: boolean;
}

export function resolveOptions(o: DeviceOptions = {}): ResolvedOptions {
  // Only known keys: the limits are sent verbatim in welcome.
  const base = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof Limits)[]) {
    base[key] = o.limits?.[key] ?? DEFAULT_LIMITS[key];
    checkInt(`limits.${key}`, base[key], 1, Number.MAX_SAFE_INTEGER);
  }
  checkInt('limits.maxBoSize', base.maxBoSize, 1, U32_MAX);
  checkInt('limits.maxMessageSize', base.maxMessageSize, 1024, U32_MAX);
  const shares = defaultSessionLimits(base);
  const limits: DeviceLimits = {
    ...base,
    maxSessions: o.limits?.maxSessions ?? DEFAULT_MAX_SESSIONS,
    maxSessionBos: o.limits?.maxSessionBos ?? shares.maxSessionBos,
    maxSessionBytes: o.limits?.maxSessionBytes ?? shares.maxSessionBytes,
    maxSessionSurfaces: o.limits?.maxSessionSurfaces ?? shares.maxSessionSurfaces,
  };
  for (const key of ['maxSessions', 'maxSessionBos', 'maxSessionBytes', 'maxSessionSurfaces'] as const) {
    checkInt(`limits.${key}`, limits[key], 1, Number.MAX_SAFE_INTEGER);
  }
  const features = [...(o.features ?? FEATURES)];
  for (const f of features) {
    if (!(FEATURES as readonly string[]).includes(f)) throw new RangeError(`unknown feature '${String(f)}' (known: ${FEATURES.join(', ')})`);
  }
  const resolved: ResolvedOptions = {
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 0,
    token: o.token,
    controlToken: o.controlToken,
    limits,
    features: FEATURES.filter((f) => features.includes(f)),
    pageSize: o.pageSize ?? DEFAULT_PAGE_SIZE,
    bandwidth: o.bandwidth ?? 0,
    fenceLatency: o.fenceLatency ?? 0,
    highWaterMark: o.highWaterMark ?? 8 * 1024 * 1024,
    helloTimeout: o.helloTimeout ?? 10_000,
    idleTimeout: o.idleTimeout ?? DEFAULT_IDLE_TIMEOUT_MS,
    record: o.record ?? false,
    logFile: o.logFile,
    log: o.log ?? (() => {}),
    websocket: o.websocket ?? 'own',
    poisonReleasedFrames: o.poisonReleasedFrames ?? process.env[POISON_ENV] === '1',
  };
  if (!WEBSOCKET_IMPLS.includes(resolved.websocket)) throw new RangeError(`websocket must be one of ${WEBSOCKET_IMPLS.join(', ')}, got ${String(resolved.websocket)}`);
  if (typeof resolved.host !== 'string' || resolved.host === '') throw new TypeError('host must be a non-empty string');
  for (const name of ['token', 'controlToken'] as const) {
    const t = resolved[name];
    if (t !== undefined && (typeof t !== 'string' || t === '')) throw new TypeError(`${name} must be a non-empty string`);
  }
  if (resolved.controlToken !== undefined && resolved.controlToken === resolved.token) {
    throw new RangeError('controlToken must differ from token (a driver must not be able to open control sessions)');
  }
  checkInt('port', resolved.port, 0, 65535);
  checkInt('pageSize', resolved.pageSize, 1, limits.maxBoSize);
  checkInt('bandwidth', resolved.bandwidth, 0, Number.MAX_SAFE_INTEGER);
  checkInt('fenceLatency', resolved.fenceLatency, 0, 3_600_000);
  checkInt('highWaterMark', resolved.highWaterMark, 1, Number.MAX_SAFE_INTEGER);
  checkInt('helloTimeout', resolved.helloTimeout, 1, 3_600_000);
  checkInt('idleTimeout', resolved.idleTimeout, 0, 86_400_000);
  return resolved;
}

function checkInt(name: string, v: unknown, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
}

const SUFFIX: Readonly<Record<string, number>> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 };

/** Parses "4096", "64k", "16m", "1g" (binary multiples) to a safe integer; NaN if malformed. */
export function parseSize(text: string): number {
  const m = /^(\d+)([kmg]?)i?b?$/i.exec(text.trim());
  if (m === null) return NaN;
  const n = Number(m[1]) * SUFFIX[m[2]!.toLowerCase()]!;
  return Number.isSafeInteger(n) ? n : NaN;
}
