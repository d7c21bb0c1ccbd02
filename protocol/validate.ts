// Turns any decoded MessagePack value into a typed message or a ProtocolError.
// Contract: parseDriverMessage / parseDeviceMessage never throw; the returned message holds
// only the keys of its schema (unknown extra keys are dropped), so later code can trust
// every field's type. Semantic checks that need device state (BO exists, range inside the
// BO, limits) are the device's job, not this module's.
import { U32_MAX, type ErrorCode } from './constants.js';
import type { DeviceMessage, DriverMessage } from './messages.js';

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The command's seq when it could be read. */
    readonly seq?: number,
    /**
     * The fence a rejected fence-carrying frame (fence, write, writeSurface) asked for, when it
     * and seq could be read: the device still signals it (docs/protocol.md §5).
     */
    readonly fence?: number,
    /** The frame's op when it is a str (also for rejected frames). */
    readonly op?: string,
  ) {
    super(message);
  }
}

type FieldType = 'u32' | 'uint' | 'str' | 'bool' | 'bin' | 'strs' | 'role' | 'ranges' | 'spans' | 'boxes';
/** key → type; a trailing '?' marks an optional field. */
type Schema = Readonly<Record<string, FieldType | `${FieldType}?`>>;

const DRIVER_SCHEMAS: Readonly<Record<DriverMessage['op'], Schema>> = {
  hello: { min: 'u32', max: 'u32', token: 'str?', role: 'role?', name: 'str?' },
  defineBo: { seq: 'uint', bo: 'u32', size: 'u32' },
  destroyBo: { seq: 'uint', bo: 'u32' },
  defineSurface: {
    seq: 'uint', sid: 'u32', bo: 'u32', offset: 'u32', width: 'u32', height: 'u32', depth: 'u32',
    bytesPerPixel: 'u32', rowPitch: 'u32', imagePitch: 'u32',
  },
  destroySurface: { seq: 'uint', sid: 'u32' },
  write: { seq: 'uint', bo: 'u32', ranges: 'ranges', seen: 'uint?', fence: 'uint?' },
  writeSurface: { seq: 'uint', sid: 'u32', boxes: 'boxes', seen: 'uint?', fence: 'uint?' },
  writeSpans: { seq: 'uint', bo: 'u32', spans: 'bin', data: 'bin', codec: 'str?', seen: 'uint?', fence: 'uint?' },
  readback: { seq: 'uint', bo: 'u32', ranges: 'spans' },
  gpuWrite: { seq: 'uint', bo: 'u32', ranges: 'ranges', session: 'u32?' },
  fence: { seq: 'uint', fence: 'uint', seen: 'uint?' },
  digest: { seq: 'uint', bo: 'u32', offset: 'u32', length: 'u32' },
  stats: { seq: 'uint' },
  ping: { seq: 'uint' },
};

const DEVICE_SCHEMAS: Readonly<Record<DeviceMessage['op'], Schema>> = {
  welcome: {
    version: 'u32', session: 'u32', pageSize: 'u32', features: 'strs', maxBos: 'uint', maxBoSize: 'u32',
    maxTotalBytes: 'uint', maxSurfaces: 'uint', maxMessageSize: 'u32', maxRanges: 'u32',
    maxSessions: 'uint?', maxSessionBos: 'uint?', maxSessionBytes: 'uint?', maxSessionSurfaces: 'uint?', idleTimeout: 'uint?',
  },
  signaled: {
    seq: 'uint', fence: 'uint', ok: 'bool', errors: 'uint?', code: 'str?', message: 'str?', errSeq: 'uint?',
  },
  readbackData: { seq: 'uint', bo: 'u32', ranges: 'ranges' },
  digestData: { seq: 'uint', bo: 'u32', offset: 'u32', pageSize: 'u32', hashes: 'bin' },
  statsData: {
    seq: 'uint', bos: 'uint', surfaces: 'uint', bytes: 'uint', commands: 'uint', failed: 'uint',
    fences: 'uint', bytesWritten: 'uint', bytesRead: 'uint', sessions: 'uint', deviceBos: 'uint',
    deviceBytes: 'uint',
  },
  deviceWrite: { bo: 'u32', ranges: 'ranges' },
  pong: { seq: 'uint' },
  error: { code: 'str', message: 'str', seq: 'uint?' },
};

/** Ops whose frame may carry a fence that is signalled also when the frame is rejected. */
const FENCE_CARRIERS: ReadonlySet<string> = new Set(['fence', 'write', 'writeSurface', 'writeSpans']);

/**
 * Validates a message sent by a driver (what the device receives). `problem` is the decoder's
 * shape problem, if any (see msgpack.ts): the frame is then a bad message whatever it holds.
 * `ops`: the ops the receiver offers (default: every op); others are answered unknown_op.
 *
 * Order of checks (docs/protocol.md §7.3), so that every implementation reports the same code:
 * not a map → bad_message; op 'hello' → the hello schema; seq unreadable → bad_message without
 * seq; shape problem → bad_message; op not a str → bad_message; unknown op → unknown_op; then
 * the fields in schema order → bad_message. Every error after the seq check carries seq, and
 * for fence carriers the fence when it is a uint.
 */
export function parseDriverMessage(value: unknown, problem?: string, ops?: ReadonlySet<string>): DriverMessage | ProtocolError {
  if (!isMap(value)) return new ProtocolError('bad_message', `message is not a map (got ${describe(value)})`);
  const op = value.op;
  const opName = typeof op === 'string' ? op : undefined;
  if (op === 'hello') return problem !== undefined ? new ProtocolError('bad_message', problem, undefined, undefined, op) : fields(value, 'hello', DRIVER_SCHEMAS.hello);
  const seqProblem = checkType('uint', value.seq);
  if (seqProblem !== null) return new ProtocolError('bad_message', `seq${seqProblem}`, undefined, undefined, opName);
  const seq = value.seq as number;
  const fence = opName !== undefined && FENCE_CARRIERS.has(opName) && checkType('uint', value.fence) === null ? (value.fence as number) : undefined;
  if (problem !== undefined) return new ProtocolError('bad_message', problem, seq, fence, opName);
  if (opName === undefined) return new ProtocolError('bad_message', `op: expected str, got ${describe(op)}`, seq);
  const schema = Object.hasOwn(DRIVER_SCHEMAS, opName) ? DRIVER_SCHEMAS[opName as DriverMessage['op']] : undefined;
  if (schema === undefined) return new ProtocolError('unknown_op', `unknown op '${opName.slice(0, 40)}'`, seq, undefined, opName);
  if (ops !== undefined && !ops.has(opName)) {
    return new ProtocolError('unknown_op', `op '${opName}' is not offered by this device (see welcome.features)`, seq, undefined, opName);
  }
  return fields(value, opName, schema, seq, fence);
}

/** Validates a message sent by the device (what a driver receives). */
export function parseDeviceMessage(value: unknown, problem?: string): DeviceMessage | ProtocolError {
  if (!isMap(value)) return new ProtocolError('bad_message', `message is not a map (got ${describe(value)})`);
  if (problem !== undefined) return new ProtocolError('bad_message', problem);
  const op = value.op;
  if (typeof op !== 'string') return new ProtocolError('bad_message', `op: expected str, got ${describe(op)}`);
  const schema = Object.hasOwn(DEVICE_SCHEMAS, op) ? DEVICE_SCHEMAS[op as DeviceMessage['op']] : undefined;
  if (schema === undefined) return new ProtocolError('unknown_op', `unknown op '${op.slice(0, 40)}'`, undefined, undefined, op);
  return fields(value, op, schema) as DeviceMessage | ProtocolError;
}

/** A MessagePack map decodes to a plain object; anything else is not a map. */
function isMap(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A schema as the validator walks it: its fields in schema order, each with its type and optionality. */
interface CompiledField {
  key: string;
  type: FieldType;
  optional: boolean;
}

/**
 * Every message received is checked field by field against its schema: the schemas are parsed
 * once here rather than re-reading the `'type?'` strings on every message (a 1-page sync
 * validates one frame on each side).
 */
const COMPILED = new Map<Schema, readonly CompiledField[]>();
function compiled(schema: Schema): readonly CompiledField[] {
  let c = COMPILED.get(schema);
  if (c === undefined) {
    c = Object.entries(schema).map(([key, spec]) => ({ key, type: spec.replace(/\?$/, '') as FieldType, optional: spec.endsWith('?') }));
    COMPILED.set(schema, c);
  }
  return c;
}

/**
 * Checks the schema's fields of a map whose op is known. The message holds exactly those
 * fields: the map itself when it is a plain object holding nothing else (the usual case: a
 * fresh object of the decoder's), else a plain copy of them.
 */
function fields(value: Record<string, unknown>, op: string, schema: Schema, seq?: number, fence?: number): DriverMessage | ProtocolError {
  const c = compiled(schema);
  let present = 1; // op
  for (let i = 0; i < c.length; i++) {
    const { key, type, optional } = c[i]!;
    const v = value[key];
    if (v === undefined || (optional && v === null)) {
      if (optional) continue;
      return new ProtocolError('bad_message', `${op}.${key}: missing`, seq, fence, op);
    }
    const problem = checkType(type, v);
    if (problem !== null) return new ProtocolError('bad_message', `${op}.${key}${problem}`, seq, fence, op);
    present++;
  }
  if (Object.keys(value).length === present && Object.getPrototypeOf(value) === Object.prototype) return value as unknown as DriverMessage;
  const out: Record<string, unknown> = { op };
  for (let i = 0; i < c.length; i++) {
    const { key, optional } = c[i]!;
    const v = value[key];
    if (v !== undefined && !(optional && v === null)) out[key] = v;
  }
  return out as unknown as DriverMessage;
}

/** null when v has the type, else a path suffix + reason such as "[2][0]: expected u32, got -1". */
function checkType(type: FieldType, v: unknown): string | null {
  switch (type) {
    case 'u32':
      return isUint(v) && v <= U32_MAX ? null : `: expected u32, got ${describe(v)}`;
    case 'uint':
      return isUint(v) ? null : `: expected uint, got ${describe(v)}`;
    case 'str':
      return typeof v === 'string' ? null : `: expected str, got ${describe(v)}`;
    case 'bool':
      return typeof v === 'boolean' ? null : `: expected bool, got ${describe(v)}`;
    case 'bin':
      return v instanceof Uint8Array ? null : `: expected bin, got ${describe(v)}`;
    case 'role':
      return v === 'driver' || v === 'control' ? null : `: expected 'driver' or 'control', got ${describe(v)}`;
    case 'strs':
      return checkList(v, (e) => (typeof e === 'string' ? null : `: expected str, got ${describe(e)}`));
    case 'ranges':
      return checkList(v, (e) => checkTuple(e, RANGE));
    case 'spans':
      return checkList(v, (e) => checkTuple(e, SPAN));
    case 'boxes':
      return checkList(v, (e) => checkTuple(e, BOX));
  }
}

const RANGE: readonly FieldType[] = ['u32', 'bin'];
const SPAN: readonly FieldType[] = ['u32', 'u32'];
const BOX: readonly FieldType[] = ['u32', 'u32', 'u32', 'u32', 'u32', 'u32', 'bin'];

function checkList(v: unknown, each: (e: unknown) => string | null): string | null {
  if (!Array.isArray(v)) return `: expected array, got ${describe(v)}`;
  for (let i = 0; i < v.length; i++) {
    const problem = each(v[i]);
    if (problem !== null) return `[${i}]${problem}`;
  }
  return null;
}

function checkTuple(v: unknown, types: readonly FieldType[]): string | null {
  if (!Array.isArray(v) || v.length !== types.length) {
    return `: expected array of ${types.length}, got ${describe(v)}`;
  }
  for (let i = 0; i < types.length; i++) {
    const problem = checkType(types[i]!, v[i]);
    if (problem !== null) return `[${i}]${problem}`;
  }
  return null;
}

function isUint(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Short, bounded description of a value for error texts. */
function describe(v: unknown): string {
  if (v === null) return 'nil';
  if (v === undefined) return 'nothing';
  if (v instanceof Uint8Array) return `bin(${v.length})`;
  if (Array.isArray(v)) return `array(${v.length})`;
  if (typeof v === 'string') return v.length > 20 ? `str(${v.length})` : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (isMap(v)) return 'map';
  return typeof v === 'object' ? 'non-standard value' : typeof v;
}
