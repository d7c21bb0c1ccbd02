// Frames for one fuzzed session: mostly plausible commands (ids the session defined, offsets near
// the edges, sizes at the limits), then field mutations (weird values, missing and unknown keys,
// another op), seq tricks, and byte-level damage of the encoded frame. Every choice comes from
// the connection's Rng, so a seed regenerates the same frames.
import { COMMAND_OPS, Encoder, type Welcome } from '../../protocol/index.js';
import type { Rng } from './rng.js';

/** Values at the edges of the protocol's integer types. */
const EDGE_UINTS = [0, 1, 2, 7, 255, 256, 4095, 4096, 4097, 65535, 65536, 2 ** 31 - 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1];
/** Values of the wrong type or out of every range. */
const WEIRD = [-1, -(2 ** 31), 1.5, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 64, '', 'x', 'seq', true, false, null, [], {}, [1, 2, 3], { op: 'ping' }];

export interface FuzzFrame {
  /** Bytes of a binary message, or a string sent as a text message. */
  data: Uint8Array | string;
  /** What was done to it, for the report of a failing case. */
  note: string;
}

export class SessionFrames {
  /** Last seq handed out; -1 before the first. */
  seq = -1;
  private readonly encoder = new Encoder();
  private readonly boSizes = new Map<number, number>();
  private readonly sids: number[] = [];

  constructor(
    private readonly rng: Rng,
    private readonly welcome: Welcome,
  ) {}

  /** A hello: usually the right one, sometimes wrong in one way. */
  static hello(rng: Rng, token: string | undefined, controlToken: string | undefined, encoder = new Encoder()): FuzzFrame {
    const hello: Record<string, unknown> = { op: 'hello', min: 1, max: 1, token, name: 'fuzz' };
    let note = 'hello';
    if (rng.chance(0.08)) {
      const how = rng.int(6);
      note = ['hello: wrong token', 'hello: no common version', 'hello: control role', 'hello: control with its token', 'hello: weird field', 'hello: not a hello'][how]!;
      if (how === 0) hello['token'] = `${token ?? ''}?`;
      if (how === 1) Object.assign(hello, { min: 2, max: 3 });
      if (how === 2) hello['role'] = 'control';
      if (how === 3) Object.assign(hello, { role: 'control', token: controlToken });
      if (how === 4) hello[rng.pick(['min', 'max', 'name', 'role', 'token'])] = rng.pick(WEIRD);
      if (how === 5) hello['op'] = rng.pick(['ping', 'stats', 'helo']);
    }
    return { data: encoder.encode(hello as never), note };
  }

  /** The barrier that ends a burst: a valid fence with the next seq. */
  barrier(fence: number): FuzzFrame {
    this.seq++;
    return { data: this.encoder.encode({ op: 'fence', seq: this.seq, fence }), note: 'barrier fence' };
  }

  /** A frame with a large reply (for a client that is not reading): a readback of a whole BO. */
  slowReaderFrame(): FuzzFrame {
    const ids = [...this.boSizes.keys()];
    this.seq++;
    if (ids.length === 0) return { data: this.encoder.encode({ op: 'ping', seq: this.seq }), note: 'ping (slow reader)' };
    const bo = this.rng.pick(ids);
    const length = Math.min(this.boSizes.get(bo)!, this.welcome.maxMessageSize - 100);
    return { data: this.encoder.encode({ op: 'readback', seq: this.seq, bo, ranges: [[0, length]] }), note: 'readback (slow reader)' };
  }

  /** The next frame of a burst. */
  next(): FuzzFrame {
    const rng = this.rng;
    if (rng.chance(0.004)) return { data: '{"op":"ping"}', note: 'text message' };
    if (rng.chance(0.002) && this.welcome.maxMessageSize <= 4 << 20) {
      return { data: new Uint8Array(this.welcome.maxMessageSize + 1 + rng.int(100)), note: 'oversized message' };
    }
    const msg = this.command();
    let note = String(msg['op']);
    if (rng.chance(0.25)) note += this.mutate(msg);
    note += this.numberSeq(msg);
    let data: Uint8Array = this.encoder.encode(msg as never);
    if (rng.chance(0.04)) {
      const damaged = damage(rng, data);
      data = damaged.data;
      note += `, ${damaged.note}`;
    }
    return { data, note };
  }

  /** A plausible command for the current session state. */
  private command(): Record<string, unknown> {
    const rng = this.rng;
    const w = this.welcome;
    const op = rng.pick(['defineBo', 'defineBo', 'destroyBo', 'write', 'write', 'write', 'readback', 'readback', 'fence', 'ping', 'defineSurface', 'destroySurface', 'writeSurface', 'gpuWrite', 'digest', 'stats']);
    const bo = this.bo();
    const size = this.boSizes.get(bo) ?? 4096;
    switch (op) {
      case 'defineBo': {
        const s = rng.pick([1, 16, 100, 4096, 4097, 65536, w.maxBoSize, w.maxBoSize + 1, 0, rng.int(20000) + 1]);
        if (!this.boSizes.has(bo) && s >= 1 && s <= w.maxBoSize) this.boSizes.set(bo, s);
        return { op, bo, size: s };
      }
      case 'destroyBo':
        if (rng.chance(0.7)) this.boSizes.delete(bo);
        return { op, bo };
      case 'write':
      case 'gpuWrite': {
        const n = rng.chance(0.01) ? w.maxRanges + 1 : rng.int(6);
        const ranges = Array.from({ length: n }, () => this.dataRange(size));
        const msg: Record<string, unknown> = { op, bo, ranges };
        if (op === 'write' && rng.chance(0.5)) msg['seen'] = rng.int(4);
        if (op === 'write' && rng.chance(0.3)) msg['fence'] = rng.int(1000);
        if (op === 'gpuWrite' && rng.chance(0.1)) msg['session'] = rng.chance(0.5) ? rng.u32() : 0;
        return msg;
      }
      case 'readback': {
        const n = rng.chance(0.01) ? w.maxRanges + 1 : rng.int(5);
        return { op, bo, ranges: Array.from({ length: n }, () => [this.offset(size), rng.chance(0.02) ? w.maxMessageSize : rng.int(300)]) };
      }
      case 'fence':
        return rng.chance(0.5) ? { op, fence: rng.int(1000), seen: rng.int(5) } : { op, fence: rng.int(1000) };
      case 'ping':
      case 'stats':
        return { op };
      case 'digest': {
        const offset = rng.chance(0.8) ? w.pageSize * rng.int(3) : rng.int(size + 1);
        return { op, bo, offset, length: rng.chance(0.9) ? rng.int(size + 1) : rng.pick(EDGE_UINTS) };
      }
      case 'defineSurface': {
        const sid = 1 + rng.int(4);
        const [width, height, depth, bpp] = [1 + rng.int(16), 1 + rng.int(16), 1 + rng.int(3), rng.pick([1, 2, 4, 8, 16, 0, 17])];
        const rowPitch = width * bpp + (rng.chance(0.9) ? rng.int(8) : -1);
        const imagePitch = rowPitch * height + (rng.chance(0.9) ? rng.int(64) : -1);
        if (rng.chance(0.7)) this.sids.push(sid);
        return { op, sid, bo, offset: rng.chance(0.8) ? rng.int(64) : rng.int(size + 1), width, height, depth, bytesPerPixel: bpp, rowPitch, imagePitch };
      }
      case 'destroySurface':
        return { op, sid: this.sid() };
      default: {
        const boxes = Array.from({ length: rng.int(4) }, () => {
          const [x, y, z, bw, bh, bd, bpp] = [rng.int(16), rng.int(16), rng.int(2), rng.int(8), rng.int(8), rng.int(2), rng.pick([1, 2, 4])];
          const bytes = bw * bh * bd * bpp + (rng.chance(0.9) ? 0 : rng.pick([-1, 1]));
          return [x, y, z, bw, bh, bd, new Uint8Array(Math.max(0, bytes)).fill(rng.int(256))];
        });
        const msg: Record<string, unknown> = { op: 'writeSurface', sid: this.sid(), boxes };
        if (rng.chance(0.3)) msg['fence'] = rng.int(1000);
        return msg;
      }
    }
  }

  /** Mostly ids the session defined, sometimes any. */
  private bo(): number {
    const ids = [...this.boSizes.keys()];
    if (ids.length > 0 && this.rng.chance(0.75)) return this.rng.pick(ids);
    return this.rng.chance(0.9) ? 1 + this.rng.int(6) : this.rng.pick(EDGE_UINTS);
  }

  private sid(): number {
    return this.sids.length > 0 && this.rng.chance(0.8) ? this.rng.pick(this.sids) : 1 + this.rng.int(5);
  }

  /** Offsets cluster at the start and near the end, where the bounds are. */
  private offset(size: number): number {
    const r = this.rng.int(10);
    if (r < 4) return this.rng.int(64);
    if (r < 8) return Math.max(0, size - this.rng.int(64));
    return r === 8 ? this.rng.int(size + 1) : this.rng.pick(EDGE_UINTS);
  }

  private dataRange(size: number): [number, Uint8Array] {
    const len = this.rng.chance(0.05) ? this.rng.int(8192) : this.rng.int(300);
    return [this.offset(size), new Uint8Array(len).fill(this.rng.int(256))];
  }

  /** One to three field mutations; returns what was done. */
  private mutate(msg: Record<string, unknown>): string {
    const rng = this.rng;
    const notes: string[] = [];
    for (let i = 1 + rng.int(3); i > 0; i--) {
      const keys = Object.keys(msg).filter((k) => k !== 'op');
      const how = rng.int(5);
      if (how === 0 && keys.length > 0) {
        const k = rng.pick(keys);
        msg[k] = rng.pick(WEIRD);
        notes.push(`${k} weird`);
      } else if (how === 1 && keys.length > 0) {
        const k = rng.pick(keys);
        msg[k] = rng.pick(EDGE_UINTS);
        notes.push(`${k} edge`);
      } else if (how === 2 && keys.length > 0) {
        const k = rng.pick(keys);
        delete msg[k];
        notes.push(`${k} missing`);
      } else if (how === 3) {
        // defineProperty: an own key named __proto__ goes on the wire; assigning would set the
        // object's prototype instead (and make the encoder see an array, say).
        const key = rng.pick(['extra', 'x', 'seen', 'fence', 'session', '__proto__']);
        Object.defineProperty(msg, key, { value: rng.pick([...WEIRD, ...EDGE_UINTS]), enumerable: true, writable: true, configurable: true });
        notes.push(`extra key ${key}`);
      } else {
        msg['op'] = rng.chance(0.7) ? rng.pick(COMMAND_OPS) : rng.pick(['welcome', 'signaled', 'teleport', '', 'PING']);
        notes.push(`op ${String(msg['op'])}`);
      }
    }
    return ` (${notes.join(', ')})`;
  }

  /** Usually the next seq (with a gap now and then); rarely none, a bad one, or one going back. */
  private numberSeq(msg: Record<string, unknown>): string {
    const rng = this.rng;
    if (msg['op'] === 'hello') return '';
    const r = rng.int(1000);
    if (r < 8) {
      msg['seq'] = rng.pick(WEIRD);
      return ', seq unreadable';
    }
    if (r < 10 && this.seq >= 0) {
      msg['seq'] = this.seq - rng.int(2);
      return ', seq not increasing';
    }
    this.seq += rng.chance(0.95) ? 1 : 1 + rng.int(1000);
    msg['seq'] = this.seq;
    return '';
  }
}

/** Byte-level damage of an encoded frame. */
export function damage(rng: Rng, frame: Uint8Array): FuzzFrame & { data: Uint8Array } {
  const b = Uint8Array.from(frame);
  switch (rng.int(8)) {
    case 0: {
      for (let i = 1 + rng.int(3); i > 0; i--) b[rng.int(b.length)]! ^= 1 << rng.int(8);
      return { data: b, note: 'bits flipped' };
    }
    case 1:
      return { data: b.subarray(0, rng.int(b.length)), note: 'truncated' };
    case 2:
      return { data: concat(b, rng.bytes(1 + rng.int(8))), note: 'trailing bytes' };
    case 3: {
      const at = 1 + rng.int(Math.max(1, b.length - 1));
      return { data: concat(b.subarray(0, at), Uint8Array.of(0xc1), b.subarray(at)), note: '0xc1 inserted' };
    }
    case 4: {
      const at = 1 + rng.int(Math.max(1, b.length - 1));
      return { data: concat(b.subarray(0, at), Uint8Array.of(0xd4, rng.int(256), 0), b.subarray(at)), note: 'extension inserted' };
    }
    case 5: {
      const depth = rng.pick([9, 100, 20_000]);
      return { data: concat(new Uint8Array(depth).fill(0x91), b), note: `wrapped ${depth} deep` };
    }
    case 6:
      return { data: concat(Uint8Array.of(0xdf, 0xff, 0xff, 0xff, 0xff), b.subarray(1)), note: 'map claims 2^32−1 entries' };
    default:
      return { data: rng.bytes(1 + rng.int(64)), note: 'random bytes' };
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}
