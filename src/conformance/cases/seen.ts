// §6.14 seen: device writes the sender has not seen yet are kept; per-object state dies with
// the object.
import { applied, readBytes, same, type Case, type Ctx } from '../case.js';
import type { WireClient } from '../client.js';

/** A session with BO 1 of `size` bytes, and one announced gpuWrite of 0xdd over [at, at+4). */
async function announced(t: Ctx, size: number, at: number): Promise<WireClient> {
  const c = await t.session();
  await applied(c, { op: 'defineBo', bo: 1, size });
  c.cmd({ op: 'gpuWrite', bo: 1, ranges: [[at, new Uint8Array(4).fill(0xdd)]] });
  await c.expect('deviceWrite');
  return c;
}

const fill = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v);

/** After a gpuWrite at 6000 into an 8 KiB BO 1, BO 1 is destroyed and defined again with `size`. */
function destroyedCase(id: string, what: string, size: number): Case {
  return {
    id,
    section: '6.14',
    title: `announcements die with their BO: a ${what} BO with the same id takes an old-seen write whole`,
    needs: ['seen', 'gpuWrite'],
    async run(t) {
      const c = await announced(t, 8192, 6000);
      await applied(c, { op: 'destroyBo', bo: 1 }, { op: 'defineBo', bo: 1, size });
      await applied(c, { op: 'write', bo: 1, ranges: [[0, fill(size, 0x66)]], seen: 0 });
      same(await readBytes(c, 1, 0, size), fill(size, 0x66), 'the new BO');
    },
  };
}

export const seenCases: Case[] = [
  {
    id: 'seen.keeps-unseen',
    section: '6.14',
    title: 'a write that had not seen an announcement keeps the announced bytes; one that had is applied as sent',
    needs: ['seen', 'gpuWrite'],
    async run(t) {
      const c = await announced(t, 64, 8);
      await applied(c, { op: 'write', bo: 1, ranges: [[0, fill(64, 0x11)]], seen: 0 });
      const expected = fill(64, 0x11);
      expected.fill(0xdd, 8, 12);
      same(await readBytes(c, 1, 0, 64), expected, 'bytes after a write with seen 0');
      await applied(c, { op: 'write', bo: 1, ranges: [[0, fill(64, 0x22)]], seen: 1 });
      same(await readBytes(c, 1, 0, 64), fill(64, 0x22), 'bytes after a write with seen 1');
    },
  },
  {
    id: 'seen.absent',
    section: '6.14',
    title: 'a write without seen is applied as sent',
    needs: ['seen', 'gpuWrite'],
    async run(t) {
      const c = await announced(t, 64, 8);
      await applied(c, { op: 'write', bo: 1, ranges: [[0, fill(64, 0x33)]] });
      same(await readBytes(c, 1, 0, 64), fill(64, 0x33), 'bytes after a write without seen');
    },
  },
  {
    id: 'seen.acknowledged',
    section: '6.14',
    title: 'a seen on a fence acknowledges: later frames with an older seen no longer keep those bytes',
    needs: ['seen', 'gpuWrite'],
    async run(t) {
      const c = await announced(t, 64, 8);
      same((await c.fence(undefined, { seen: 1 })).ok, true, 'fence with seen 1');
      await applied(c, { op: 'write', bo: 1, ranges: [[0, fill(64, 0x44)]], seen: 0 });
      same(await readBytes(c, 1, 0, 64), fill(64, 0x44), 'bytes after a write with seen 0 once 1 was acknowledged');
    },
  },
  {
    id: 'seen.per-bo',
    section: '6.14',
    title: 'an announcement protects only its own BO',
    needs: ['seen', 'gpuWrite'],
    async run(t) {
      const c = await announced(t, 64, 8);
      await applied(c, { op: 'defineBo', bo: 2, size: 64 }, { op: 'write', bo: 2, ranges: [[0, fill(64, 0x55)]], seen: 0 });
      same(await readBytes(c, 2, 0, 64), fill(64, 0x55), 'bytes of another BO');
    },
  },
  destroyedCase('seen.destroyed-smaller', 'smaller', 4096),
  destroyedCase('seen.destroyed-same-size', 'same-size', 8192),
];
