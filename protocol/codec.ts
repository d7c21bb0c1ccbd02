// Frame codec: one message ↔ one binary WebSocket frame of standard MessagePack.
// Encoding uses msgpackr with record/structure extensions off, so the output is plain maps,
// arrays, strs, ints, bools and bins that any MessagePack implementation decodes.
import { C1, Packr, Unpackr } from 'msgpackr';
import { U32_MAX } from './constants.js';
import type { DeviceMessage, DriverMessage, Message } from './messages.js';
import { parseDeviceMessage, parseDriverMessage, ProtocolError } from './validate.js';

const STANDARD = {
  useRecords: false, // no record extension: maps stay maps
  mapsAsObjects: true,
  variableMapSize: true, // fixmap for small maps (compact, and what other encoders emit)
  int64AsType: 'number', // uint64/int64 decode to number; the validator rejects unsafe ones
  skipValues: [undefined], // absent optional fields are omitted, never msgpackr's undefined ext
} as const;

/**
 * Reusable encoder. msgpackr writes into one growing arena and returns a view of it; a
 * returned view is never overwritten by later encodes (msgpackr moves to a fresh arena when
 * the current one is nearly full), so it may be handed to ws.send() without copying.
 * One Encoder per event loop owner; it is not reentrant across threads.
 */
export class Encoder {
  private readonly packr = new Packr(STANDARD);

  encode(msg: Message): Uint8Array {
    return this.packr.pack(widen(msg));
  }
}

const unpackr = new Unpackr(STANDARD);

/**
 * Decodes one frame to a plain value. A frame that is not exactly one well-formed MessagePack
 * value (truncated, trailing bytes, the never-used byte 0xc1 as the value, an extension type
 * msgpackr does not know) yields ProtocolError 'malformed'. Extension values msgpackr does
 * know decode to non-plain objects, which the validator rejects as wrong types.
 */
export function decodeFrame(frame: Uint8Array): unknown {
  try {
    const value: unknown = unpackr.unpack(frame);
    if (value === C1) return new ProtocolError('malformed', 'not one MessagePack value: reserved byte 0xc1');
    return value;
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    return new ProtocolError('malformed', `not one MessagePack value: ${reason.slice(0, 80)}`);
  }
}

/** What the device does with a received frame: decode, then validate. */
export function decodeDriverFrame(frame: Uint8Array): DriverMessage | ProtocolError {
  const value = decodeFrame(frame);
  return value instanceof ProtocolError ? value : parseDriverMessage(value);
}

/** What a driver does with a received frame: decode, then validate. */
export function decodeDeviceFrame(frame: Uint8Array): DeviceMessage | ProtocolError {
  const value = decodeFrame(frame);
  return value instanceof ProtocolError ? value : parseDeviceMessage(value);
}

/**
 * msgpackr writes integers ≥ 2^32 as float64; the protocol wants int formats. Top-level
 * fields are the only ones that may exceed u32 (seq, fence, counters, byte totals; nested
 * offsets and lengths are u32 by the limits), so a shallow pass that turns those into BigInt
 * (encoded as a 64-bit int) suffices. Copies the message only in that rare case.
 */
function widen(msg: Message): object {
  let out: Record<string, unknown> | undefined;
  for (const key in msg) {
    const v = (msg as unknown as Record<string, unknown>)[key];
    if (typeof v === 'number' && v > U32_MAX && Number.isSafeInteger(v)) {
      out ??= { ...msg };
      out[key] = BigInt(v);
    }
  }
  return out ?? msg;
}
