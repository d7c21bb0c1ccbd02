// Device options, their defaults and validation. resolveOptions throws RangeError/TypeError
// with a message fit for a CLI user; everything downstream trusts ResolvedOptions.
import { DEFAULT_LIMITS, DEFAULT_PAGE_SIZE, U32_MAX, type Limits } from '../protocol/index.js';

export interface DeviceOptions {
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** TCP port; 0 (default) picks an ephemeral one. */
  port?: number;
  /** When set, hello must carry this token (else close 1008). */
  token?: string;
  /** Accept role 'control' connections (cross-session gpuWrite). Default false. */
  control?: boolean;
  limits?: Partial<Limits>;
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
  /** Keep every received frame in memory (device.log). Default false. */
  record?: boolean;
  /** Append every received frame to this file (format in docs/protocol.md). */
  logFile?: string;
  /** Receives one line per notable event (connections, closes, errors). Default: discard. */
  log?: (line: string) => void;
}

export interface ResolvedOptions {
  host: string;
  port: number;
  token: string | undefined;
  control: boolean;
  limits: Limits;
  pageSize: number;
  bandwidth: number;
  fenceLatency: number;
  highWaterMark: number;
  helloTimeout: number;
  record: boolean;
  logFile: string | undefined;
  log: (line: string) => void;
}

export function resolveOptions(o: DeviceOptions = {}): ResolvedOptions {
  // Only known keys: the limits are sent verbatim in welcome.
  const limits = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof Limits)[]) {
    limits[key] = o.limits?.[key] ?? DEFAULT_LIMITS[key];
    checkInt(`limits.${key}`, limits[key], 1, Number.MAX_SAFE_INTEGER);
  }
  checkInt('limits.maxBoSize', limits.maxBoSize, 1, U32_MAX);
  checkInt('limits.maxMessageSize', limits.maxMessageSize, 1024, U32_MAX);
  const resolved: ResolvedOptions = {
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 0,
    token: o.token,
    control: o.control ?? false,
    limits,
    pageSize: o.pageSize ?? DEFAULT_PAGE_SIZE,
    bandwidth: o.bandwidth ?? 0,
    fenceLatency: o.fenceLatency ?? 0,
    highWaterMark: o.highWaterMark ?? 8 * 1024 * 1024,
    helloTimeout: o.helloTimeout ?? 10_000,
    record: o.record ?? false,
    logFile: o.logFile,
    log: o.log ?? (() => {}),
  };
  if (typeof resolved.host !== 'string' || resolved.host === '') throw new TypeError('host must be a non-empty string');
  if (resolved.token !== undefined && typeof resolved.token !== 'string') throw new TypeError('token must be a string');
  checkInt('port', resolved.port, 0, 65535);
  checkInt('pageSize', resolved.pageSize, 1, limits.maxBoSize);
  checkInt('bandwidth', resolved.bandwidth, 0, Number.MAX_SAFE_INTEGER);
  checkInt('fenceLatency', resolved.fenceLatency, 0, 3_600_000);
  checkInt('highWaterMark', resolved.highWaterMark, 1, Number.MAX_SAFE_INTEGER);
  checkInt('helloTimeout', resolved.helloTimeout, 1, 3_600_000);
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
