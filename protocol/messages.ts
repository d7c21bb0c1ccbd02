// Types of every message on the wire. Each message is a MessagePack map with string keys;
// `op` names the message. Integers are uints (u32 where marked, otherwise up to 2^53-1);
// binary data is MessagePack `bin` (Uint8Array in JS). Unknown extra keys are ignored.

import type { Limits, SessionLimits } from './constants.js';

/** `[offset, data]`: bytes at a BO offset. */
export type DataRange = [offset: number, data: Uint8Array];
/** `[offset, length]`: a byte span of a BO. */
export type Span = [offset: number, length: number];
/** `[x, y, z, w, h, d, data]`: a surface box and its pixels, tightly packed x→y→z. */
export type BoxData = [x: number, y: number, z: number, w: number, h: number, d: number, data: Uint8Array];

export type Role = 'driver' | 'control';

// ---- driver → device -------------------------------------------------------------------

export interface Hello {
  op: 'hello';
  /** Lowest and highest protocol version the driver speaks. */
  min: number;
  max: number;
  token?: string;
  /** 'control' connections may target another session's BO with gpuWrite (device option). */
  role?: Role;
  /** Free text shown in logs and the device's session list. */
  name?: string;
}

export interface DefineBo { op: 'defineBo'; seq: number; bo: number; size: number }
export interface DestroyBo { op: 'destroyBo'; seq: number; bo: number }

export interface DefineSurface {
  op: 'defineSurface';
  seq: number;
  sid: number;
  bo: number;
  /** Byte offset of texel (0,0,0) in the BO. */
  offset: number;
  width: number;
  height: number;
  depth: number;
  bytesPerPixel: number;
  /** Bytes from one row to the next (≥ width·bytesPerPixel). */
  rowPitch: number;
  /** Bytes from one z-slice to the next (≥ rowPitch·height). */
  imagePitch: number;
}
export interface DestroySurface { op: 'destroySurface'; seq: number; sid: number }

/**
 * `seen` (optional, on write, writeSurface and fence): how many deviceWrite
 * announcements the sender had processed when it read the data it sends. The
 * device keeps the bytes of later device writes when it applies the data, so
 * an upload built before a GPU write was announced cannot overwrite it.
 */
export interface Seen { seen?: number }
/** A DMA frame may carry a fence, signalled right after the frame is applied or rejected. */
export interface Fenced { fence?: number }
/** DMA guest → device copy of a BO ("UPDATE"). */
export interface Write extends Seen, Fenced { op: 'write'; seq: number; bo: number; ranges: DataRange[] }
/**
 * DMA guest → device copy of byte spans of a BO in one table (feature writeSpans, docs/protocol.md section 6.15):
 * `spans` holds SPAN_ENTRY_BYTES per span (u32 BE offset, u32 BE length); `data` is the
 * spans' bytes back to back, encoded by `codec` (default 'none').
 */
export interface WriteSpans extends Seen, Fenced { op: 'writeSpans'; seq: number; bo: number; spans: Uint8Array; data: Uint8Array; codec?: string }
/** DMA guest → device copy through a surface layout ("UPDATE_GB_IMAGE" with boxes). */
export interface WriteSurface extends Seen, Fenced { op: 'writeSurface'; seq: number; sid: number; boxes: BoxData[] }
/** Device → guest copy request ("READBACK"); answered by readbackData. */
export interface Readback { op: 'readback'; seq: number; bo: number; ranges: Span[] }
/**
 * Make the device change a BO as a GPU would; the owner is told with deviceWrite.
 * `session` (control connections only) names the owning session; default: the sender.
 */
export interface GpuWrite { op: 'gpuWrite'; seq: number; bo: number; ranges: DataRange[]; session?: number }
export interface Fence extends Seen { op: 'fence'; seq: number; fence: number }
/** Per-page digests of [offset, offset+length); offset must be page-aligned. */
export interface Digest { op: 'digest'; seq: number; bo: number; offset: number; length: number }
export interface Stats { op: 'stats'; seq: number }
export interface Ping { op: 'ping'; seq: number }

/** Everything after hello. */
export type Command =
  | DefineBo
  | DestroyBo
  | DefineSurface
  | DestroySurface
  | Write
  | WriteSurface
  | WriteSpans
  | Readback
  | GpuWrite
  | Fence
  | Digest
  | Stats
  | Ping;

export type DriverMessage = Hello | Command;

// ---- device → driver -------------------------------------------------------------------

/**
 * The device's limits travel flat in welcome (maxBos, maxBoSize, …; see Limits). The session
 * limits and idleTimeout are optional: devices that predate them omit them.
 */
export interface Welcome extends Limits, Partial<SessionLimits> {
  op: 'welcome';
  /** Negotiated protocol version. */
  version: number;
  /** This connection's session id (unique for the device's lifetime). */
  session: number;
  /** Page size of digests. */
  pageSize: number;
  features: string[];
  /** ms without a frame after which the device closes an idle session (0 or absent: never). */
  idleTimeout?: number;
}

/**
 * A fence reached the device after every earlier command was applied (or rejected).
 * ok=false when any command since the previous fence failed; then errors counts them and
 * code/message/errSeq describe the first one.
 */
export interface Signaled {
  op: 'signaled';
  seq: number;
  fence: number;
  ok: boolean;
  errors?: number;
  code?: string;
  message?: string;
  errSeq?: number;
}

export interface ReadbackData { op: 'readbackData'; seq: number; bo: number; ranges: DataRange[] }
/** `hashes` holds DIGEST_BYTES per page, pages in order. */
export interface DigestData { op: 'digestData'; seq: number; bo: number; offset: number; pageSize: number; hashes: Uint8Array }

export interface StatsData {
  op: 'statsData';
  seq: number;
  /** This session. */
  bos: number;
  surfaces: number;
  bytes: number;
  commands: number;
  failed: number;
  fences: number;
  bytesWritten: number;
  bytesRead: number;
  /** Whole device. */
  sessions: number;
  deviceBos: number;
  deviceBytes: number;
}

/** The device changed these bytes of the receiver's BO (sent unsolicited, after the change). */
export interface DeviceWrite { op: 'deviceWrite'; bo: number; ranges: DataRange[] }
export interface Pong { op: 'pong'; seq: number }
export interface ErrorMessage { op: 'error'; code: string; message: string; seq?: number }

export type DeviceMessage =
  | Welcome
  | Signaled
  | ReadbackData
  | DigestData
  | StatsData
  | DeviceWrite
  | Pong
  | ErrorMessage;

export type Message = DriverMessage | DeviceMessage;
