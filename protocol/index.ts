// Public surface of the wire protocol (see docs/protocol.md).
export * from './constants.js';
export type * from './messages.js';
export { ProtocolError, parseDriverMessage, parseDeviceMessage } from './validate.js';
export { Encoder, decodeFrame, decodeDriverFrame, decodeDeviceFrame } from './codec.js';
export { decodeStrict, MalformedError, type Decoded } from './msgpack.js';
export { pageDigests, pageCount } from './digest.js';
export { SpanTable, spanCount, encodeSpanTable, isCodec, encodeSpanData, decodeSpanData } from './spans.js';
export { putUint, putU32, uintBytes } from './uint.js';
