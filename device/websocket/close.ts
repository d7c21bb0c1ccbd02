// What a close frame may carry (RFC 6455 §5.5.1, §7.4): the codes a peer may put on the wire and
// the reason's size. Shared by the reader (which refuses other codes from the peer) and both
// socket implementations (which never send them).

/** Close codes the endpoint uses (RFC 6455 §7.4.1). */
export const WsClose = { normal: 1000, noStatus: 1005, protocolError: 1002, invalidData: 1007, tooBig: 1009 } as const;

/** Close reasons are cut to this many bytes (a control frame holds 125, the code takes 2). */
const MAX_REASON_BYTES = 123;

/**
 * Codes allowed in a close frame (the IANA registry as ws accepts them). 1005, 1006 and 1015
 * only report what happened (no code, no close frame, a TLS failure) and never go on the wire.
 */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

/** Cuts a close reason to what a close frame holds, at a character boundary. */
export function cutReason(reason: string): string {
  if (Buffer.byteLength(reason) <= MAX_REASON_BYTES) return reason;
  const chars = Array.from(reason);
  while (Buffer.byteLength(chars.join('')) > MAX_REASON_BYTES) chars.pop();
  return chars.join('');
}
