// §7 errors and §8 close codes that the earlier groups do not reach, and §7.3's order of
// checks for a frame with several defects.
import { applied, check, expectFatal, NotApplicable, rejected, same, type Case } from '../case.js';

export const errorCases: Case[] = [
  {
    id: 'err.text-frame',
    section: '7.2',
    title: 'a text message: error text_frame, close 1003',
    async run(t) {
      const c = await t.session();
      c.sendRaw('{"op":"ping","seq":1}');
      await expectFatal(c, 'text_frame', 1003);
    },
  },
  {
    id: 'err.too-big',
    section: '8',
    title: 'a message larger than maxMessageSize: close 1009',
    async run(t) {
      const n = t.welcome.maxMessageSize + 1;
      if (n > 64 * 1024 * 1024) throw new NotApplicable(`maxMessageSize ${n - 1} is too large to send in a test`);
      const c = await t.session();
      c.sendRaw(new Uint8Array(n));
      const closed = await c.waitClosed();
      same(closed.code, 1009, 'close code');
      check(c.unread().length === 0, 'nothing but the close answers an oversized message');
    },
  },
  {
    id: 'err.forbidden',
    section: '6.8',
    title: 'a driver session naming another session in gpuWrite: forbidden, nothing changes',
    needs: ['gpuWrite'],
    async run(t) {
      const a = await t.session();
      const b = await t.session();
      await applied(a, { op: 'defineBo', bo: 1, size: 16 });
      await rejected(b, { op: 'gpuWrite', bo: 1, session: a.welcome!.session, ranges: [[0, Uint8Array.of(1)]] }, 'forbidden');
      const seq = a.cmd({ op: 'readback', bo: 1, ranges: [[0, 1]] });
      same(await a.next(), { op: 'readbackData', seq, bo: 1, ranges: [[0, Uint8Array.of(0)]] }, 'the other session\'s next message');
    },
  },
  {
    id: 'err.check-order',
    section: '7.3',
    title: 'a frame with several defects gets the code of the first check in §7.3\'s order',
    async run(t) {
      const c = await t.session();
      await applied(c, { op: 'defineBo', bo: 1, size: 4096 });
      const many = Array.from({ length: t.welcome.maxRanges + 1 }, () => [0, Uint8Array.of(0)]);
      // validation before state: a bad field on an unknown BO
      await rejected(c, { op: 'write', bo: 9, ranges: [[0, 'x']] }, 'bad_message');
      // the object before its contents: unknown BO with too many ranges
      await rejected(c, { op: 'write', bo: 9, ranges: many }, 'unknown_bo');
      // the count before each range: too many ranges, one out of range
      await rejected(c, { op: 'write', bo: 1, ranges: [...many.slice(1), [4096, Uint8Array.of(0)]] }, 'limit');
      // exists before the size
      await rejected(c, { op: 'defineBo', bo: 1, size: 0 }, 'exists');
      if (t.offers('digest') && t.welcome.pageSize > 1) {
        await rejected(c, { op: 'digest', bo: 1, offset: 1, length: 8192 }, 'misaligned');
      }
      if (t.offers('surfaces')) {
        const s = { op: 'defineSurface', sid: 1, bo: 1, offset: 0, width: 4, height: 4, depth: 1, bytesPerPixel: 4, rowPitch: 16, imagePitch: 64 };
        await applied(c, s);
        await rejected(c, { ...s, bo: 2, width: 0 }, 'exists');
        await rejected(c, { ...s, sid: 2, bo: 2, width: 0 }, 'unknown_bo');
      }
    },
  },
  {
    id: 'err.unknown-session',
    section: '6.8',
    title: 'a control gpuWrite naming a session that does not exist (any more): unknown_bo',
    needs: ['control', 'gpuWrite'],
    async run(t) {
      if (t.controlToken === undefined) throw new NotApplicable('no --control-token given');
      const gone = await t.session();
      await applied(gone, { op: 'defineBo', bo: 1, size: 16 });
      const id = gone.welcome!.session;
      await gone.close();
      const ctl = await t.session({ role: 'control', token: t.controlToken });
      // The device may notice the close a moment after the client: retry while the write still lands.
      for (let i = 0; i < 50; i++) {
        const seq = ctl.cmd({ op: 'gpuWrite', bo: 1, session: id, ranges: [[0, Uint8Array.of(1)]] });
        ctl.cmd({ op: 'fence', fence: seq });
        const m = await ctl.next();
        if (m.op === 'error') {
          same([m.code, m.seq], ['unknown_bo', seq], 'error for a gone session');
          return;
        }
        same([m.op, (m as { ok?: boolean }).ok], ['signaled', true], 'answer while the session is still known');
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`session ${id} still accepts writes 1 s after it closed`);
    },
  },
];
