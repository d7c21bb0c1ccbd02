// §5: a rejected command has no effect at all. Checked by readback and, when the device offers
// it, by digest before and after (not by fences: fence accounting has cases of its own).
import { applied, NotApplicable, pattern, readBytes, refused, same, type Case, type Ctx } from '../case.js';
import type { WireClient } from '../client.js';

const SIZE = 16 * 1024;

/** A session with BO 1 of SIZE bytes holding pattern 7, and a function that checks it still does. */
async function filledBo(t: Ctx): Promise<{ c: WireClient; unchanged: (what: string) => Promise<void> }> {
  const c = await t.session();
  const content = pattern(SIZE, 7);
  await applied(c, { op: 'defineBo', bo: 1, size: SIZE }, { op: 'write', bo: 1, ranges: [[0, content]] });
  const digest = async (): Promise<Uint8Array | undefined> => {
    if (!t.offers('digest')) return undefined;
    const seq = c.cmd({ op: 'digest', bo: 1, offset: 0, length: SIZE });
    return (await c.expect('digestData', seq)).hashes;
  };
  const before = await digest();
  return {
    c,
    async unchanged(what) {
      same(await digest(), before, `digest after ${what}`);
      same(await readBytes(c, 1, 0, SIZE), content, `BO bytes after ${what}`);
    },
  };
}

export const atomicityCases: Case[] = [
  {
    id: 'atom.write',
    section: '5',
    title: 'a write whose last range is out of range writes none of its ranges',
    async run(t) {
      const { c, unchanged } = await filledBo(t);
      await refused(c, { op: 'write', bo: 1, ranges: [[0, new Uint8Array(100)], [4096, new Uint8Array(10)], [SIZE - 1, new Uint8Array(2)]] }, 'out_of_range');
      await unchanged('a rejected write');
    },
  },
  {
    id: 'atom.write-limit',
    section: '5',
    title: 'a write with more than maxRanges ranges writes none of them',
    async run(t) {
      const { c, unchanged } = await filledBo(t);
      const n = t.welcome.maxRanges + 1;
      if (n * 8 >= t.welcome.maxMessageSize) throw new NotApplicable(`maxRanges ${n - 1} does not fit one message`);
      const ranges = Array.from({ length: n }, (_, i) => [i % SIZE, Uint8Array.of(0)]);
      await refused(c, { op: 'write', bo: 1, ranges }, 'limit');
      await unchanged('a write over maxRanges');
    },
  },
  {
    id: 'atom.write-surface',
    section: '5',
    title: 'a writeSurface whose last box does not fit writes none of its boxes',
    needs: ['surfaces'],
    async run(t) {
      const { c, unchanged } = await filledBo(t);
      await applied(c, { op: 'defineSurface', sid: 1, bo: 1, offset: 0, width: 16, height: 16, depth: 1, bytesPerPixel: 4, rowPitch: 64, imagePitch: 1024 });
      const good = [0, 0, 0, 2, 2, 1, new Uint8Array(16)];
      await refused(c, { op: 'writeSurface', sid: 1, boxes: [good, [15, 0, 0, 2, 1, 1, new Uint8Array(8)]] }, 'out_of_range');
      await refused(c, { op: 'writeSurface', sid: 1, boxes: [good, [0, 0, 0, 1, 1, 1, new Uint8Array(5)]] }, 'out_of_range');
      await unchanged('rejected writeSurfaces');
    },
  },
  {
    id: 'atom.gpu-write',
    section: '5',
    title: 'a gpuWrite with a range out of range changes nothing and announces nothing',
    needs: ['gpuWrite'],
    async run(t) {
      const { c, unchanged } = await filledBo(t);
      await refused(c, { op: 'gpuWrite', bo: 1, ranges: [[0, new Uint8Array(4)], [SIZE, Uint8Array.of(1)]] }, 'out_of_range');
      await unchanged('a rejected gpuWrite');
    },
  },
  {
    id: 'atom.readback',
    section: '5',
    title: 'a readback with one span out of range answers only the error, no data',
    async run(t) {
      const { c, unchanged } = await filledBo(t);
      await refused(c, { op: 'readback', bo: 1, ranges: [[0, 10], [SIZE - 5, 6]] }, 'out_of_range');
      await unchanged('a rejected readback');
    },
  },
];
