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

/** Validates a message sent by a driver (what the device receives). */
export function parseDriverMessage(value: unknown): DriverMessage | ProtocolError {
  return parse(value, DRIVER_SCHEMAS) as DriverMessage | ProtocolError;
}

/** Validates a message sent by the device (what a driver receives). */
export function parseDeviceMessage(value: unknown): DeviceMessage | ProtocolError {
  return parse(value, DEVICE_SCHEMAS) as DeviceMessage | ProtocolError;
}

/** A MessagePack map decodes to a plain object; extension values decode to class instances. */
function isMap(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function parse(value: unknown, schemas: Readonly<Record<string, Schema>>): object | ProtocolError {
  if (!isMap(value)) return new ProtocolError('bad_message', `message is not a map (got ${describe(value)})`);
  const op = value.op;
  // seq is read first so that every later error can name the command it refers to.
  const seq = checkType('uint', value.seq) === null ? (value.seq as number) : undefined;
  if (typeof op !== 'string') return new ProtocolError('bad_message', `op: expected str, got ${describe(op)}`, seq);
  const schema = Object.hasOwn(schemas, op) ? schemas[op] : undefined;
  if (schema === undefined) return new ProtocolError('unknown_op', `unknown op '${op.slice(0, 40)}'`, seq);
  const out: Record<string, unknown> = { op };
  for (const key in schema) {
    const spec = schema[key]!;
    const optional = spec.endsWith('?');
    const v = value[key];
    if (v === undefined || (optional && v === null)) {
      if (optional) continue;
      return new ProtocolError('bad_message', `${op}.${key}: missing`, seq);
    }
    const problem = checkType((optional ? spec.slice(0, -1) : spec) as FieldType, v);
    if (problem !== null) return new ProtocolError('bad_message', `${op}.${key}${problem}`, seq);
    out[key] = v;
  }
  return out;
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
