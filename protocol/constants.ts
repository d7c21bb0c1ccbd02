// Wire constants of the vgpu-dirty device protocol (docs/protocol.md is the normative text).
// Values here are part of the wire contract: changing one is a protocol version change.

/** Protocol versions this implementation speaks; hello/welcome negotiate the highest common one. */
export const PROTOCOL_VERSION_MIN = 1;
export const PROTOCOL_VERSION_MAX = 1;

/** Largest value of a u32 field (ids, offsets, sizes, surface dimensions). */
export const U32_MAX = 0xffff_ffff;

/** Ops the driver sends. Everything after hello carries a `seq`. */
export const COMMAND_OPS = [
  'hello',
  'defineBo',
  'destroyBo',
  'defineSurface',
  'destroySurface',
  'write',
  'writeSurface',
  'writeSpans',
  'readback',
  'gpuWrite',
  'fence',
  'digest',
  'stats',
  'ping',
] as const;

/** Ops the device sends. */
export const REPLY_OPS = [
  'welcome',
  'signaled',
  'readbackData',
  'digestData',
  'statsData',
  'deviceWrite',
  'pong',
  'error',
] as const;

/** Feature names announced in welcome.features (docs/protocol.md §6.2 has the contract). */
export const FEATURES = ['surfaces', 'gpuWrite', 'digest', 'stats', 'seen', 'fencedWrite', 'writeSpans', 'deflate'] as const;
export type Feature = (typeof FEATURES)[number];

/**
 * Optional ops and the feature that offers each. A device that does not announce the feature
 * answers the op with `unknown_op`; a driver MUST NOT send it then. Ops not listed are core.
 */
export const OP_FEATURE: Readonly<Partial<Record<(typeof COMMAND_OPS)[number], Feature>>> = {
  defineSurface: 'surfaces',
  destroySurface: 'surfaces',
  writeSurface: 'surfaces',
  gpuWrite: 'gpuWrite',
  digest: 'digest',
  stats: 'stats',
  writeSpans: 'writeSpans',
};

/**
 * Encodings of writeSpans' `data` (docs/protocol.md §6.15). 'none' is part of feature
 * writeSpans; every other codec is offered by the feature of the same name.
 */
export const CODECS = ['none', 'deflate'] as const;
export type Codec = (typeof CODECS)[number];

/** Bytes of one writeSpans table entry: u32 BE offset, u32 BE length. */
export const SPAN_ENTRY_BYTES = 8;

/**
 * Deepest nesting of arrays and maps a receiver decodes (the top-level map is level 1; the
 * protocol itself needs 3). Deeper values make the frame a bad message, never a stack overflow.
 */
export const MAX_DEPTH = 8;
/** Device writes remembered per session for `seen` (older ones lose protection; see docs/protocol.md). */
export const MAX_UNSEEN_DEVICE_WRITES = 4096;
/** Extra feature announced when the device accepts role 'control' connections. */
export const FEATURE_CONTROL = 'control';

/**
 * Error codes carried by `{op:'error'}` and by failed fences. The first group answers one
 * command and keeps the connection; the second group is sent just before the device closes
 * the connection with the matching close code (see CLOSE_FOR).
 */
export const ERROR_CODES = [
  'bad_message',
  'unknown_op',
  'unknown_bo',
  'unknown_surface',
  'exists',
  'out_of_range',
  'misaligned',
  'in_use',
  'limit',
  'forbidden',
  'injected',
  // connection-fatal
  'malformed',
  'protocol',
  'bad_seq',
  'version_unsupported',
  'bad_token',
  'text_frame',
  'busy',
  'idle',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** WebSocket close codes the device uses (RFC 6455 §7.4.1, 1012 from the IANA registry). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  unsupportedData: 1003,
  invalidData: 1007,
  policyViolation: 1008,
  tooBig: 1009,
  internalError: 1011,
  serviceRestart: 1012,
  tryAgainLater: 1013,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** Close code that follows each connection-fatal error code. */
export const CLOSE_FOR: Partial<Record<ErrorCode, CloseCode>> = {
  malformed: CloseCode.invalidData,
  protocol: CloseCode.protocolError,
  bad_seq: CloseCode.protocolError,
  version_unsupported: CloseCode.protocolError,
  bad_token: CloseCode.policyViolation,
  forbidden: CloseCode.policyViolation,
  text_frame: CloseCode.unsupportedData,
  busy: CloseCode.tryAgainLater,
  idle: CloseCode.goingAway,
};

/** Limits a device announces in welcome; DEFAULT_LIMITS when not configured. */
export interface Limits {
  /** BOs alive at once, over all connections. */
  maxBos: number;
  /** Bytes of one BO (at most U32_MAX so every offset fits a u32). */
  maxBoSize: number;
  /** Bytes of all BOs alive at once, over all connections. */
  maxTotalBytes: number;
  /** Surfaces alive at once, over all connections. */
  maxSurfaces: number;
  /** Bytes of one WebSocket message, either direction; larger ones close with 1009. */
  maxMessageSize: number;
  /** Ranges, boxes or digest pages in one message. */
  maxRanges: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxBos: 4096,
  maxBoSize: 256 * 1024 * 1024,
  maxTotalBytes: 1024 * 1024 * 1024,
  maxSurfaces: 4096,
  maxMessageSize: 16 * 1024 * 1024,
  maxRanges: 16384,
});

/**
 * How a device shares itself between sessions (docs/protocol.md §9). Announced in welcome by
 * devices that have them (optional there: a version-1 device without them is still valid).
 */
export interface SessionLimits {
  /** Connections open at once, before or after hello; more are refused with `busy`, close 1013. */
  maxSessions: number;
  /** BOs one session may have alive at once. */
  maxSessionBos: number;
  /** Bytes of one session's BOs. */
  maxSessionBytes: number;
  /** Surfaces one session may have alive at once. */
  maxSessionSurfaces: number;
}

export const DEFAULT_MAX_SESSIONS = 64;

/**
 * Default shares for device-wide limits: a quarter of each, and always room for one BO of
 * maxBoSize, so no single session can starve the others and every session can use the device.
 */
export function defaultSessionLimits(l: Limits): Omit<SessionLimits, 'maxSessions'> {
  return {
    maxSessionBos: Math.max(1, Math.ceil(l.maxBos / 4)),
    maxSessionBytes: Math.min(l.maxTotalBytes, Math.max(l.maxBoSize, Math.floor(l.maxTotalBytes / 4))),
    maxSessionSurfaces: Math.max(1, Math.ceil(l.maxSurfaces / 4)),
  };
}

/** A session that sends nothing for this long while the device owes it nothing is closed (ms). */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/** Page size used for digests unless the device is configured otherwise. */
export const DEFAULT_PAGE_SIZE = 4096;

/** Bytes of one page digest (SHA-256 truncated). */
export const DIGEST_BYTES = 8;
