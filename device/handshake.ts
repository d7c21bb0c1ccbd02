// Admission of a connection: the first frame must be a hello the device accepts.
//
// Order of checks (docs/protocol.md §3): the credential comes first, so a client that cannot
// authenticate learns nothing else about the device (not its versions, not which hello fields
// it dislikes).
//   1. not a map whose op is 'hello'      → protocol, 1002
//   2. role 'control' on a device without a control token → forbidden, 1008
//   3. token missing or wrong (the control token for role 'control', else the driver token)
//                                          → bad_token, 1008
//   4. any field invalid                    → protocol, 1002
//   5. no common version                    → version_unsupported, 1002
import { createHash, timingSafeEqual } from 'node:crypto';
import {
  PROTOCOL_VERSION_MAX,
  PROTOCOL_VERSION_MIN,
  parseDriverMessage,
  ProtocolError,
  type Decoded,
  type ErrorCode,
  type Role,
} from '../protocol/index.js';
import type { ResolvedOptions } from './options.js';

export interface Admitted {
  role: Role;
  name: string;
  version: number;
}

export interface Refused {
  code: ErrorCode;
  message: string;
}

export function admit(first: Decoded, options: ResolvedOptions): Admitted | Refused {
  const v = first.value;
  const raw = typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) ? (v as Record<string, unknown>) : undefined;
  if (raw === undefined || raw['op'] !== 'hello') {
    const what = raw === undefined ? 'a value that is not a map' : typeof raw['op'] === 'string' ? `op '${raw['op'].slice(0, 40)}'` : 'a map without an op';
    return { code: 'protocol', message: `expected hello first, got ${what}` };
  }
  const control = raw['role'] === 'control';
  const secret = control ? options.controlToken : options.token;
  if (control && secret === undefined) return { code: 'forbidden', message: 'this device accepts no control sessions' };
  if (secret !== undefined && !sameSecret(raw['token'], secret)) {
    return { code: 'bad_token', message: raw['token'] === undefined || raw['token'] === null ? 'token required' : 'wrong token' };
  }
  const hello = parseDriverMessage(v, first.problem);
  if (hello instanceof ProtocolError) return { code: 'protocol', message: `invalid hello: ${hello.message}` };
  if (hello.op !== 'hello') throw new Error('unreachable: op was checked to be hello');
  const version = Math.min(hello.max, PROTOCOL_VERSION_MAX);
  if (version < Math.max(hello.min, PROTOCOL_VERSION_MIN)) {
    return {
      code: 'version_unsupported',
      message: `driver speaks versions ${hello.min}..${hello.max}, device ${PROTOCOL_VERSION_MIN}..${PROTOCOL_VERSION_MAX}`,
    };
  }
  return { role: hello.role ?? 'driver', name: hello.name ?? '', version };
}

/**
 * Constant time in the secret's length too: both sides are hashed to 32 bytes first, so the
 * comparison takes the same time whatever the length of either.
 */
function sameSecret(given: unknown, want: string): boolean {
  if (typeof given !== 'string') return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(want).digest();
  return timingSafeEqual(a, b);
}
