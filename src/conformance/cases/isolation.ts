// §1 and §6.8: sessions are separate namespaces; only a control session reaches across.
import { applied, expectError, NotApplicable, readBytes, rejected, same, type Case } from '../case.js';

export const isolationCases: Case[] = [
  {
    id: 'iso.same-id',
    section: '1',
    title: 'the same BO id in two sessions names two BOs, under interleaved traffic',
    async run(t) {
      const a = await t.session();
      const b = await t.session();
      a.cmd({ op: 'defineBo', bo: 1, size: 4096 });
      b.cmd({ op: 'defineBo', bo: 1, size: 8192 });
      for (let i = 0; i < 50; i++) {
        a.cmd({ op: 'write', bo: 1, ranges: [[i * 8, new Uint8Array(8).fill(0xa0 + (i % 16))]] });
        b.cmd({ op: 'write', bo: 1, ranges: [[i * 8, new Uint8Array(8).fill(0xb0 + (i % 16))]] });
      }
      const want = (base: number): Uint8Array => Uint8Array.from({ length: 400 }, (_, j) => base + (Math.floor(j / 8) % 16));
      same(await readBytes(a, 1, 0, 400), want(0xa0), 'session a');
      same(await readBytes(b, 1, 0, 400), want(0xb0), 'session b');
      await rejected(a, { op: 'readback', bo: 1, ranges: [[4096, 1]] }, 'out_of_range');
      same((await readBytes(b, 1, 4096, 1)).length, 1, 'session b\'s larger BO');
    },
  },
  {
    id: 'iso.no-cross-access',
    section: '1',
    title: 'a session cannot read, write, digest or destroy a BO only another session defined',
    async run(t) {
      const a = await t.session();
      const b = await t.session();
      await applied(a, { op: 'defineBo', bo: 2, size: 4096 }, { op: 'write', bo: 2, ranges: [[0, Uint8Array.of(5)]] });
      const msgs: (Record<string, unknown> & { op: string })[] = [
        { op: 'readback', bo: 2, ranges: [[0, 1]] },
        { op: 'write', bo: 2, ranges: [[0, Uint8Array.of(1)]] },
        { op: 'destroyBo', bo: 2 },
      ];
      if (t.offers('digest')) msgs.push({ op: 'digest', bo: 2, offset: 0, length: 4096 });
      for (const m of msgs) await rejected(b, m, 'unknown_bo');
      same(await readBytes(a, 2, 0, 1), Uint8Array.of(5), 'the owner\'s BO');
    },
  },
  {
    id: 'iso.failures-separate',
    section: '5',
    title: 'one session\'s failures do not show in another session\'s fences',
    async run(t) {
      const a = await t.session();
      const b = await t.session();
      a.cmd({ op: 'write', bo: 7, ranges: [] });
      await expectError(a, 'unknown_bo', a.seq);
      same((await b.fence()).ok, true, 'the other session\'s fence');
      same((await a.fence()).ok, false, 'the failing session\'s fence');
    },
  },
  {
    id: 'iso.control-write',
    section: '6.8',
    title: 'a control session\'s gpuWrite lands in the named session\'s BO and is announced to that session only',
    needs: ['control', 'gpuWrite'],
    async run(t) {
      if (t.controlToken === undefined) throw new NotApplicable('no --control-token given');
      const a = await t.session();
      await applied(a, { op: 'defineBo', bo: 1, size: 64 });
      const ctl = await t.session({ role: 'control', token: t.controlToken });
      await applied(ctl, { op: 'defineBo', bo: 1, size: 64 });
      ctl.cmd({ op: 'gpuWrite', bo: 1, session: a.welcome!.session, ranges: [[10, Uint8Array.of(1, 2, 3)]] });
      same(await a.next(), { op: 'deviceWrite', bo: 1, ranges: [[10, Uint8Array.of(1, 2, 3)]] }, 'announcement to the owner');
      same((await ctl.fence()).ok, true, 'the control session\'s fence (no announcement before it)');
      same(await readBytes(a, 1, 10, 3), Uint8Array.of(1, 2, 3), 'the owner\'s BO');
      same(await readBytes(ctl, 1, 10, 3), new Uint8Array(3), 'the control session\'s own BO 1');
    },
  },
  {
    id: 'iso.freed-on-close',
    section: '1',
    title: 'a session\'s BOs are freed when it closes (device-wide stats drop back)',
    needs: ['stats'],
    async run(t) {
      const watcher = await t.session();
      const stats = async (): Promise<number> => (await watcher.expect('statsData', watcher.cmd({ op: 'stats' }))).deviceBytes;
      const before = await stats();
      const a = await t.session();
      await applied(a, { op: 'defineBo', bo: 1, size: 100_000 });
      same(await stats(), before + 100_000, 'device bytes with the session open');
      await a.close();
      for (let i = 0; i < 100 && (await stats()) !== before; i++) await new Promise((r) => setTimeout(r, 20));
      same(await stats(), before, 'device bytes after the session closed');
    },
  },
];
