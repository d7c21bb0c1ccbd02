// What a conformance case is, what it may use, and the checks it makes.
//
// A case has a stable id (cited by docs/protocol.md, never renumbered or reused), the spec
// section it checks, and a body that drives the device over the wire only. The body throws to
// fail (the message says what differed) or throws NotApplicable when the device does not
// announce what the case needs.
import { isDeepStrictEqual } from 'node:util';
import type { DeviceMessage, ErrorMessage, Feature, Hello, Signaled, Welcome } from '../../protocol/index.js';
import { show, type WireClient } from './client.js';

/** What a case may need beyond the core protocol. */
export type Need = Feature | 'control' | 'token';

export interface Case {
  /** Stable id, `group.name`. */
  readonly id: string;
  /** docs/protocol.md section, e.g. '6.5'. */
  readonly section: string;
  /** What conformance means here, in one line. */
  readonly title: string;
  readonly needs?: readonly Need[];
  /** Bound of the whole case in ms (default 20 s). */
  readonly timeoutMs?: number;
  run(t: Ctx): Promise<void>;
}

/** What a case gets: the device, its announced welcome, and connections closed for it afterwards. */
export interface Ctx {
  readonly url: string;
  readonly token: string | undefined;
  readonly controlToken: string | undefined;
  /** The welcome of a probe session opened before the cases ran. */
  readonly welcome: Welcome;
  offers(feature: Feature): boolean;
  /** A session after hello (token filled in unless given). */
  session(hello?: Partial<Hello>): Promise<WireClient>;
  /** A connection with nothing sent yet. */
  connect(): Promise<WireClient>;
}

export class NotApplicable extends Error {
  override readonly name = 'NotApplicable';
}

/** Fails the case unless `ok`. */
export function check(ok: boolean, what: string): asserts ok {
  if (!ok) throw new Error(what);
}

/** Fails the case unless actual deep-equals expected; the message shows both. */
export function same(actual: unknown, expected: unknown, what: string): void {
  if (isDeepStrictEqual(normalise(actual), normalise(expected))) return;
  if (actual instanceof Uint8Array && expected instanceof Uint8Array) throw new Error(`${what}: ${binDiff(actual, expected)}`);
  throw new Error(`${what}: expected ${show(expected)}, got ${show(actual)}`);
}

/** Where two byte strings first differ, and how many bytes differ. */
function binDiff(actual: Uint8Array, expected: Uint8Array): string {
  if (actual.length !== expected.length) return `expected ${expected.length} bytes, got ${actual.length}`;
  let first = -1;
  let count = 0;
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) {
      if (first < 0) first = i;
      count++;
    }
  }
  return `${count} of ${actual.length} bytes differ, the first at ${first} (expected 0x${expected[first]!.toString(16)}, got 0x${actual[first]!.toString(16)})`;
}

/** Buffers and Uint8Arrays compare by content. */
function normalise(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
  if (Array.isArray(v)) return v.map(normalise);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [k, normalise(x)]));
  return v;
}

// ---- expectations shared by many cases ----

/** The next message is error `code` for `seq` (absent seq: the error must carry none). */
export async function expectError(c: WireClient, code: string, seq: number | undefined): Promise<ErrorMessage> {
  const m = await c.next();
  check(m.op === 'error', `expected error ${code}${seq !== undefined ? ` for seq ${seq}` : ''}, got ${show(m)}`);
  check(m.code === code, `expected error ${code}, got ${m.code} (${m.message})`);
  check(m.seq === seq, seq === undefined ? `error ${code} must carry no seq, carries ${m.seq}` : `error ${code} carries seq ${m.seq}, expected ${seq}`);
  check(typeof m.message === 'string' && m.message.length > 0, `error ${code} has an empty message`);
  return m;
}

/** Sends a command that must be rejected with `code`; returns its error (no fence is sent). */
export async function refused(c: WireClient, msg: Record<string, unknown> & { op: string }, code: string): Promise<ErrorMessage> {
  return expectError(c, code, c.cmd(msg));
}

/**
 * Sends a command that must be rejected with `code`: its error comes back, and the next fence
 * reports exactly that one failure. The session lives on.
 */
export async function rejected(c: WireClient, msg: Record<string, unknown> & { op: string }, code: string): Promise<ErrorMessage> {
  const seq = c.cmd(msg);
  const e = await expectError(c, code, seq);
  const s = await c.fence();
  same([s.ok, s.errors, s.code, s.message, s.errSeq], [false, 1, code, e.message, seq], 'the next fence');
  return e;
}

/** Applies commands that must all succeed: nothing comes back but an ok fence signal. */
export async function applied(c: WireClient, ...msgs: (Record<string, unknown> & { op: string })[]): Promise<Signaled> {
  for (const m of msgs) c.cmd(m);
  const seq = c.cmd({ op: 'fence', fence: c.seq + 1 });
  const m = await c.next();
  check(m.op === 'signaled' && m.seq === seq, `expected only the fence's signal after ${msgs.map((x) => x.op).join(', ')}, got ${show(m)}`);
  check(m.ok, `fence after ${msgs.map((x) => x.op).join(', ')} reports a failure: ${m.code} ${m.message}`);
  return m;
}

/** The device sends error `code` (no seq), then closes with `close` and reason `code: …`. */
export async function expectFatal(c: WireClient, code: string, close: number): Promise<void> {
  await expectError(c, code, undefined);
  await expectClose(c, close, code);
}

/** The connection closes with `close`; with `code`, the reason must start `code:`. */
export async function expectClose(c: WireClient, close: number, code?: string): Promise<void> {
  const closed = await c.waitClosed();
  check(closed.code === close, `expected close ${close}, got ${closed.code} '${closed.reason}'`);
  if (code !== undefined) check(closed.reason.startsWith(`${code}: `), `close reason must be '${code}: <message>', got '${closed.reason}'`);
}

/** The device's bytes of [offset, offset+length) of a BO, by readback. */
export async function readBytes(c: WireClient, bo: number, offset: number, length: number): Promise<Uint8Array> {
  const seq = c.cmd({ op: 'readback', bo, ranges: [[offset, length]] });
  const m = await c.expect('readbackData', seq);
  same([m.bo, m.ranges.length, m.ranges[0]?.[0], m.ranges[0]?.[1].length], [bo, 1, offset, length], 'readbackData shape');
  return m.ranges[0]![1];
}

/** Deterministic test bytes. */
export function pattern(length: number, seed: number): Uint8Array {
  const b = new Uint8Array(length);
  for (let i = 0; i < length; i++) b[i] = (i * 7 + seed * 13 + (i >> 8)) & 0xff;
  return b;
}

/** Messages until the one that satisfies `stop` (included), failing on anything `allowed` rejects. */
export async function collect(c: WireClient, stop: (m: DeviceMessage) => boolean, waitMs?: number): Promise<DeviceMessage[]> {
  const out: DeviceMessage[] = [];
  for (;;) {
    const m = await c.next(waitMs);
    out.push(m);
    if (stop(m)) return out;
  }
}
