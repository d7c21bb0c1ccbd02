// Frame codec: one message ↔ one binary WebSocket frame of standard MessagePack.
// Encoding uses msgpackr with record/structure extensions off, so the output is plain maps,
// arrays, strs, ints, bools and bins that any MessagePack implementation decodes. Decoding
// uses the strict decoder of msgpack.ts, which accepts exactly what the spec allows.
import { Packr } from 'msgpackr';
import { U32_MAX } from './constants.js';
import type { DeviceMessage, DriverMessage, Message } from './messages.js';
import { decodeStrict, MalformedError, type Decoded } from './msgpack.js';
import { decodeSignaledOk, encodeSignaledOk } from './signal-frame.js';
import { parseDeviceMessage, parseDriverMessage, ProtocolError } from './validate.js';

const STANDARD = {
  useRecords: false, // no record extension: maps stay maps
  mapsAsObjects: true,
  variableMapSize: true, // fixmap for small maps (compact, and what other encoders emit)
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

  /** The frame of `{op: 'signaled', seq, fence, ok: true}`: the bytes encode() writes, written directly (signal-frame.ts). */
  signaledOk(seq: number, fence: number): Uint8Array {
    return encodeSignaledOk(seq, fence) ?? this.encode({ op: 'signaled', seq, fence, ok: true });
  }
}

/**
 * Decodes one frame with the strict decoder (msgpack.ts). A frame that is not exactly one
 * well-formed value the protocol allows yields ProtocolError 'malformed'; otherwise the value
 * and the first shape problem (non-str key, repeated key, too deep), which makes it a bad
 * message once validated.
 */
export function decodeFrame(frame: Uint8Array): Decoded | ProtocolError {
  try {
    return decodeStrict(frame);
  } catch (e) {
    if (!(e instanceof MalformedError)) throw e;
    return new ProtocolError('malformed', `not one MessagePack value: ${e.message.slice(0, 80)}`);
  }
}

/** What the device does with a received frame: decode, then validate (`ops`: see parseDriverMessage). */
export function decodeDriverFrame(frame: Uint8Array, ops?: ReadonlySet<string>): DriverMessage | ProtocolError {
  const d = decodeFrame(frame);
  return d instanceof ProtocolError ? d : parseDriverMessage(d.value, d.problem, ops);
}

/** What a driver does with a received frame: decode, then validate. */
export function decodeDeviceFrame(frame: Uint8Array): DeviceMessage | ProtocolError {
  const signaled = decodeSignaledOk(frame); // the frame ending every sync, read without the general decoder
  if (signaled !== null) return signaled;
  const d = decodeFrame(frame);
  return d instanceof ProtocolError ? d : parseDeviceMessage(d.value, d.problem);
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
