// §5 ordering and fences, §6.5 fences carried by DMA frames, §6.9 fence.
import type { DeviceMessage } from '../../../protocol/index.js';
import { applied, check, expectError, readBytes, same, type Case } from '../case.js';
import { show } from '../client.js';

const byte = (v: number): Uint8Array => Uint8Array.of(v);

export const fenceCases: Case[] = [
  {
    id: 'fence.ok',
    section: '5',
    title: 'a fence with no failure since the previous one signals ok: true, echoing seq and fence',
    async run(t) {
      const c = await t.session();
      c.cmd({ op: 'defineBo', bo: 1, size: 64 });
      const seq = c.cmd({ op: 'fence', fence: 4_000_000_000 });
      same(await c.next(), { op: 'signaled', seq, fence: 4_000_000_000, ok: true }, 'signal');
    },
  },
  {
    id: 'fence.failure-accounting',
    section: '5',
    title: 'a fence counts the failures since the previous fence and names the first; the next fence is ok again',
    async run(t) {
      const c = await t.session();
      await applied(c, { op: 'defineBo', bo: 1, size: 64 });
      const first = c.cmd({ op: 'write', bo: 9, ranges: [] });
      const e1 = await expectError(c, 'unknown_bo', first);
      c.cmd({ op: 'write', bo: 1, ranges: [[0, byte(1)]] });
      const second = c.cmd({ op: 'write', bo: 1, ranges: [[64, byte(1)]] });
      await expectError(c, 'out_of_range', second);
      const s = await c.fence();
      same(s, { op: 'signaled', seq: c.seq, fence: s.fence, ok: false, errors: 2, code: 'unknown_bo', message: e1.message, errSeq: first }, 'signal after two failures');
      same((await c.fence()).ok, true, 'the following fence');
      same(await readBytes(c, 1, 0, 1), byte(1), 'the write between the failures was applied');
    },
  },
  {
    id: 'fence.order',
    section: '5',
    title: 'pipelined fences signal in submission order, each after the commands before it',
    async run(t) {
      const c = await t.session();
      c.cmd({ op: 'defineBo', bo: 1, size: 4096 });
      const fences: number[] = [];
      for (let i = 0; i < 300; i++) {
        c.cmd({ op: 'write', bo: 1, ranges: [[i, byte(i & 0xff)]] });
        if (i % 3 === 0) fences.push(c.cmd({ op: 'fence', fence: 1000 + i }));
      }
      for (const seq of fences) {
        const s = await c.expect('signaled', seq);
        same([s.fence, s.ok], [1000 + (fences.indexOf(seq) * 3), true], `signal for seq ${seq}`);
      }
    },
  },
  {
    id: 'fence.after-replies',
    section: '5',
    title: 'replies come in the order of their commands; a fence\'s signal follows every earlier reply',
    async run(t) {
      const c = await t.session();
      c.cmd({ op: 'defineBo', bo: 1, size: 8192 });
      const expected: [string, number][] = [];
      for (let i = 0; i < 20; i++) {
        c.cmd({ op: 'write', bo: 1, ranges: [[i * 100, new Uint8Array(100).fill(i)]] });
        expected.push(['readbackData', c.cmd({ op: 'readback', bo: 1, ranges: [[i * 100, 100]] })]);
        if (i % 4 === 0) expected.push(['error', c.cmd({ op: 'readback', bo: 1, ranges: [[8192, 1]] })]);
        if (t.offers('digest') && i % 5 === 0) expected.push(['digestData', c.cmd({ op: 'digest', bo: 1, offset: 0, length: 4096 })]);
        if (i % 3 === 0) expected.push(['signaled', c.cmd({ op: 'fence', fence: i + 1 })]);
      }
      const got: [string, number | undefined][] = [];
      while (got.length < expected.length) {
        const m = await c.next();
        if (m.op !== 'pong') got.push([m.op, (m as { seq?: number }).seq]);
      }
      same(got, expected, 'replies in order');
    },
  },
  {
    id: 'fence.failure-continues',
    section: '5',
    title: 'a failed command does not stop the ones after it; later commands apply in order',
    async run(t) {
      const c = await t.session();
      await applied(c, { op: 'defineBo', bo: 1, size: 16 });
      const bad = c.cmd({ op: 'write', bo: 1, ranges: [[15, Uint8Array.of(1, 2)]] });
      c.cmd({ op: 'write', bo: 1, ranges: [[0, Uint8Array.of(1, 1, 1, 1)]] });
      c.cmd({ op: 'write', bo: 1, ranges: [[2, Uint8Array.of(2, 2)]] });
      await expectError(c, 'out_of_range', bad);
      same((await c.fence()).errors, 1, 'failures before the fence');
      same(await readBytes(c, 1, 0, 4), Uint8Array.of(1, 1, 2, 2), 'bytes after two overlapping writes');
    },
  },
  {
    id: 'fence.errseq-absent',
    section: '5',
    title: 'when the first failure had no readable seq, the signal has no errSeq',
    async run(t) {
      const c = await t.session();
      c.send({ op: 'stats' });
      await expectError(c, 'bad_message', undefined);
      const s = await c.fence();
      same([s.ok, s.errors, s.code, s.errSeq], [false, 1, 'bad_message', undefined], 'signal');
    },
  },
  {
    id: 'fence.in-write',
    section: '6.5',
    title: 'a fence carried by a write is signalled right after it, with its seq, the data in place',
    needs: ['fencedWrite'],
    async run(t) {
      const c = await t.session();
      c.cmd({ op: 'defineBo', bo: 1, size: 64 });
      const seq = c.cmd({ op: 'write', bo: 1, ranges: [[10, Uint8Array.of(1, 2, 3)]], fence: 77 });
      same(await c.next(), { op: 'signaled', seq, fence: 77, ok: true }, 'signal of the carried fence');
      same(await readBytes(c, 1, 10, 3), Uint8Array.of(1, 2, 3), 'bytes written');
    },
  },
  {
    id: 'fence.in-write-rejected',
    section: '6.5',
    title: 'a carried fence is signalled also when the write is rejected by the device (error first)',
    needs: ['fencedWrite'],
    async run(t) {
      const c = await t.session();
      const seq = c.cmd({ op: 'write', bo: 9, ranges: [[0, byte(1)]], fence: 5 });
      const e = await expectError(c, 'unknown_bo', seq);
      same(await c.next(), { op: 'signaled', seq, fence: 5, ok: false, errors: 1, code: 'unknown_bo', message: e.message, errSeq: seq }, 'signal');
    },
  },
  {
    id: 'fence.in-write-bad-message',
    section: '6.5',
    title: 'a carried fence is signalled also when the write is a bad message, if seq and fence are readable',
    needs: ['fencedWrite'],
    async run(t) {
      const c = await t.session();
      c.cmd({ op: 'defineBo', bo: 1, size: 64 });
      for (const [i, ranges] of [[[0, 'text']], 'nope', [[-1, byte(1)]]].entries()) {
        const seq = c.cmd({ op: 'write', bo: 1, ranges, fence: 100 + i });
        const e = await expectError(c, 'bad_message', seq);
        same(await c.next(), { op: 'signaled', seq, fence: 100 + i, ok: false, errors: 1, code: 'bad_message', message: e.message, errSeq: seq }, `signal after ranges ${show(ranges)}`);
      }
      const seq = c.cmd({ op: 'writeSurface', sid: 1, boxes: 7, fence: 99 });
      await expectError(c, 'bad_message', seq);
      same((await c.expect('signaled', seq)).fence, 99, 'fence of a bad writeSurface');
    },
  },
  {
    id: 'fence.bad-fence-frame',
    section: '5',
    title: 'a fence frame that is a bad message (a bad seen) is still signalled when seq and fence are readable',
    needs: ['seen'],
    async run(t) {
      const c = await t.session();
      const seq = c.cmd({ op: 'fence', fence: 3, seen: 'all' });
      const e = await expectError(c, 'bad_message', seq);
      same(await c.next(), { op: 'signaled', seq, fence: 3, ok: false, errors: 1, code: 'bad_message', message: e.message, errSeq: seq }, 'signal');
    },
  },
  {
    id: 'fence.unreadable-seq',
    section: '5',
    title: 'a fence-carrying frame without a readable seq is not signalled; a later fence is, and counts the failure',
    async run(t) {
      const c = await t.session();
      const frames: Record<string, unknown>[] = [{ op: 'fence', seq: 'x', fence: 8 }];
      if (t.offers('fencedWrite')) frames.push({ op: 'write', bo: 1, ranges: [], fence: 9 });
      for (const f of frames) {
        c.send(f);
        await expectError(c, 'bad_message', undefined);
      }
      const s = await c.fence(10);
      same([s.fence, s.ok, s.errors, s.errSeq], [10, false, frames.length, undefined], 'the next fence');
      check(c.unread().length === 0, `unexpected messages: ${show(c.unread())}`);
    },
  },
  {
    id: 'order.model',
    section: '5',
    title: 'a pipelined random mix of writes, readbacks, pings and fences matches a model, replies in seq order',
    async run(t) {
      const c = await t.session();
      const size = 2048;
      const model = new Uint8Array(size);
      let x = 0x2545f491; // fixed xorshift seed: the case is the same every run
      const rnd = (n: number): number => {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        return (x >>> 0) % n;
      };
      c.cmd({ op: 'defineBo', bo: 1, size });
      const expected: DeviceMessage[] = [];
      for (let i = 0; i < 400; i++) {
        const kind = rnd(4);
        const offset = rnd(size);
        const len = rnd(65);
        const fits = offset + len <= size;
        if (kind === 0) {
          const data = new Uint8Array(len).fill(rnd(256));
          const seq = c.cmd({ op: 'write', bo: 1, ranges: [[offset, data]] });
          if (fits) model.set(data, offset);
          else expected.push({ op: 'error', code: 'out_of_range', message: '', seq });
        } else if (kind === 1) {
          const seq = c.cmd({ op: 'readback', bo: 1, ranges: [[offset, len]] });
          expected.push(fits ? { op: 'readbackData', seq, bo: 1, ranges: [[offset, model.slice(offset, offset + len)]] } : { op: 'error', code: 'out_of_range', message: '', seq });
        } else if (kind === 2) {
          c.cmd({ op: 'ping' });
        } else {
          expected.push({ op: 'signaled', seq: c.cmd({ op: 'fence', fence: i }), fence: i, ok: true });
        }
      }
      let last = -1;
      for (let i = 0; i < expected.length; ) {
        const m = await c.next();
        if (m.op === 'pong') continue;
        const want = expected[i++]!;
        const seq = (m as { seq?: number }).seq ?? -1;
        check(seq > last, `${m.op} for seq ${seq} after a reply for seq ${last}`);
        last = seq;
        same([m.op, seq], [want.op, (want as { seq: number }).seq], `reply ${i}`);
        if (want.op === 'readbackData') same(m, want, `readback for seq ${seq}`);
      }
    },
  },
];
