// §6.3–§6.12 and §10, §11: every op's round trip and its per-command errors.
import { pageDigests } from '../../../protocol/index.js';
import { applied, check, expectError, pattern, readBytes, rejected, same, type Case } from '../case.js';

/** A 4×3×2 surface of 2-byte pixels, rows padded to 12 bytes, slices to 40, at BO offset 100. */
const SURFACE = { sid: 5, bo: 1, offset: 100, width: 4, height: 3, depth: 2, bytesPerPixel: 2, rowPitch: 12, imagePitch: 40 };

export const commandCases: Case[] = [
  {
    id: 'bo.define-zeroed',
    section: '6.3',
    title: 'a new BO holds zeros; ids are the driver\'s choice (0 and 2^32−1 included)',
    async run(t) {
      const c = await t.session();
      await applied(c, { op: 'defineBo', bo: 0, size: 300 }, { op: 'defineBo', bo: 0xffff_ffff, size: 1 });
      same(await readBytes(c, 0, 0, 300), new Uint8Array(300), 'BO 0');
      same(await readBytes(c, 0xffff_ffff, 0, 1), new Uint8Array(1), 'BO 2^32−1');
    },
  },
  {
    id: 'bo.write-readback',
    section: '6.5',
    title: 'write copies ranges in list order (a later range wins), empty data is allowed; readback returns spans in order',
    async run(t) {
      const c = await t.session();
      await applied(
        c,
        { op: 'defineBo', bo: 1, size: 3 * 4096 },
        { op: 'write', bo: 1, ranges: [[10, pattern(100, 1)], [8192, pattern(4096, 2)], [20, Uint8Array.of(0xee, 0xee)], [5, new Uint8Array(0)]] },
      );
      const seq = c.cmd({ op: 'readback', bo: 1, ranges: [[0, 12], [8190, 4], [20, 3], [4096, 0]] });
      const first = new Uint8Array(12);
      first.set(pattern(2, 1), 10);
      const third = pattern(100, 1).slice(10, 13);
      third.set([0xee, 0xee]);
      same(await c.next(), {
        op: 'readbackData', seq, bo: 1,
        ranges: [[0, first], [8190, Uint8Array.of(0, 0, ...pattern(2, 2))], [20, third], [4096, new Uint8Array(0)]],
      }, 'readbackData');
    },
  },
  {
    id: 'bo.destroy',
    section: '6.3',
    title: 'destroyBo frees the id: its BO is gone (unknown_bo) and the id can be defined again, zeroed',
    async run(t) {
      const c = await t.session();
      await applied(c, { op: 'defineBo', bo: 1, size: 64 }, { op: 'write', bo: 1, ranges: [[0, pattern(64, 3)]] }, { op: 'destroyBo', bo: 1 });
      await rejected(c, { op: 'readback', bo: 1, ranges: [[0, 1]] }, 'unknown_bo');
      await rejected(c, { op: 'destroyBo', bo: 1 }, 'unknown_bo');
      await applied(c, { op: 'defineBo', bo: 1, size: 32 });
      same(await readBytes(c, 1, 0, 32), new Uint8Array(32), 'the redefined BO');
    },
  },
  {
    id: 'bo.exists',
    section: '6.3',
    title: 'defining an id in use: exists, the BO unchanged',
    async run(t) {
      const c = await t.session();
      await applied(c, { op: 'defineBo', bo: 1, size: 8 }, { op: 'write', bo: 1, ranges: [[0, pattern(8, 1)]] });
      await rejected(c, { op: 'defineBo', bo: 1, size: 16 }, 'exists');
      same(await readBytes(c, 1, 0, 8), pattern(8, 1), 'the BO after a second define');
    },
  },
  {
    id: 'surf.write',
    section: '6.6',
    title: 'writeSurface puts each pixel at offset + z·imagePitch + y·rowPitch + x·bpp; padding and zero boxes untouched',
    needs: ['surfaces'],
    async run(t) {
      const c = await t.session();
      const box = pattern(2 * 2 * 2 * 2, 3); // w=2, h=2, d=2 at (1,1,0)
      await applied(
        c,
        { op: 'defineBo', bo: 1, size: 200 },
        { op: 'defineSurface', ...SURFACE },
        { op: 'writeSurface', sid: 5, boxes: [[1, 1, 0, 2, 2, 2, box], [0, 0, 0, 0, 3, 1, new Uint8Array(0)]] },
      );
      const expected = new Uint8Array(200);
      for (let z = 0; z < 2; z++) {
        for (let y = 0; y < 2; y++) {
          const at = 100 + z * 40 + (1 + y) * 12 + 2;
          expected.set(box.subarray((z * 2 + y) * 4, (z * 2 + y) * 4 + 4), at);
        }
      }
      same(await readBytes(c, 1, 0, 200), expected, 'BO bytes');
      await applied(c, { op: 'destroySurface', sid: 5 }, { op: 'destroyBo', bo: 1 });
    },
  },
  {
    id: 'surf.errors',
    section: '6.4',
    title: 'surface errors: bad dimensions and pitches, outside the BO, unknown ids, exists, in_use, bad boxes',
    needs: ['surfaces'],
    async run(t) {
      const c = await t.session();
      await applied(c, { op: 'defineBo', bo: 1, size: 200 });
      const s = { op: 'defineSurface', ...SURFACE };
      await rejected(c, { ...s, rowPitch: 7 }, 'bad_message');
      await rejected(c, { ...s, imagePitch: 35 }, 'bad_message');
      await rejected(c, { ...s, width: 0 }, 'bad_message');
      await rejected(c, { ...s, bytesPerPixel: 0 }, 'bad_message');
      await rejected(c, { ...s, bytesPerPixel: 17, rowPitch: 68, imagePitch: 204 }, 'bad_message');
      await rejected(c, { ...s, offset: 129 }, 'out_of_range'); // ends at byte 201
      await rejected(c, { ...s, bo: 2 }, 'unknown_bo');
      await rejected(c, { op: 'writeSurface', sid: 5, boxes: [] }, 'unknown_surface');
      await rejected(c, { op: 'destroySurface', sid: 5 }, 'unknown_surface');
      await applied(c, s);
      await rejected(c, s, 'exists');
      await rejected(c, { op: 'destroyBo', bo: 1 }, 'in_use');
      await rejected(c, { op: 'writeSurface', sid: 5, boxes: [[3, 0, 0, 2, 1, 1, new Uint8Array(4)]] }, 'out_of_range');
      await rejected(c, { op: 'writeSurface', sid: 5, boxes: [[0, 0, 1, 1, 1, 2, new Uint8Array(4)]] }, 'out_of_range');
      await rejected(c, { op: 'writeSurface', sid: 5, boxes: [[0, 0, 0, 2, 1, 1, new Uint8Array(3)]] }, 'out_of_range');
      same(await readBytes(c, 1, 0, 200), new Uint8Array(200), 'BO bytes after the rejected commands');
    },
  },
  {
    id: 'gpu.write',
    section: '6.8',
    title: 'gpuWrite changes the BO and is announced with deviceWrite carrying the new bytes',
    needs: ['gpuWrite'],
    async run(t) {
      const c = await t.session();
      await applied(c, { op: 'defineBo', bo: 1, size: 4096 });
      c.cmd({ op: 'gpuWrite', bo: 1, ranges: [[5, Uint8Array.of(0xaa, 0xbb)], [4095, Uint8Array.of(1)]] });
      same(await c.next(), { op: 'deviceWrite', bo: 1, ranges: [[5, Uint8Array.of(0xaa, 0xbb)], [4095, Uint8Array.of(1)]] }, 'announcement');
      same((await c.fence()).ok, true, 'fence after gpuWrite');
      same(await readBytes(c, 1, 4, 3), Uint8Array.of(0, 0xaa, 0xbb), 'bytes after gpuWrite');
    },
  },
  {
    id: 'digest.pages',
    section: '10',
    title: 'digest answers SHA-256/8 per page of the span, the last page partial; length 0 gives no hashes',
    needs: ['digest'],
    async run(t) {
      const c = await t.session();
      const P = t.welcome.pageSize;
      const content = pattern(2 * P + 100, 5);
      await applied(c, { op: 'defineBo', bo: 1, size: 3 * P }, { op: 'write', bo: 1, ranges: [[0, content]] });
      let seq = c.cmd({ op: 'digest', bo: 1, offset: 0, length: 2 * P + 100 });
      same(await c.next(), { op: 'digestData', seq, bo: 1, offset: 0, pageSize: P, hashes: pageDigests(content, P) }, 'digest of 2 pages + 100 bytes');
      seq = c.cmd({ op: 'digest', bo: 1, offset: P, length: 2 * P });
      const bytes = new Uint8Array(3 * P);
      bytes.set(content);
      same((await c.expect('digestData', seq)).hashes, pageDigests(bytes.subarray(P), P), 'digest of pages 1..2');
      seq = c.cmd({ op: 'digest', bo: 1, offset: P, length: 0 });
      same((await c.expect('digestData', seq)).hashes, new Uint8Array(0), 'digest of nothing');
    },
  },
  {
    id: 'digest.errors',
    section: '6.10',
    title: 'digest errors: misaligned offset, span outside the BO, unknown BO',
    needs: ['digest'],
    async run(t) {
      const c = await t.session();
      const P = t.welcome.pageSize;
      await applied(c, { op: 'defineBo', bo: 1, size: 2 * P });
      if (P > 1) await rejected(c, { op: 'digest', bo: 1, offset: 1, length: 1 }, 'misaligned');
      await rejected(c, { op: 'digest', bo: 1, offset: P, length: P + 1 }, 'out_of_range');
      await rejected(c, { op: 'digest', bo: 2, offset: 0, length: 1 }, 'unknown_bo');
    },
  },
  {
    id: 'stats.counters',
    section: '6.11',
    title: 'stats counts applied commands (not fences, pings or itself), failures, fences, bytes written and read',
    needs: ['stats'],
    async run(t) {
      const c = await t.session();
      c.cmd({ op: 'defineBo', bo: 1, size: 1000 }); // applied 1
      c.cmd({ op: 'write', bo: 1, ranges: [[0, new Uint8Array(10)], [500, new Uint8Array(5)]] }); // 2, 15 bytes
      c.cmd({ op: 'ping' });
      await c.expect('pong');
      c.cmd({ op: 'readback', bo: 1, ranges: [[0, 7], [10, 3]] }); // 3, 10 bytes read
      await c.expect('readbackData');
      c.cmd({ op: 'write', bo: 2, ranges: [] }); // failed 1
      await expectError(c, 'unknown_bo', c.seq);
      await c.fence(); // fences 1
      c.cmd({ op: 'defineBo', bo: 2, size: 24 }); // 4
      if (t.offers('fencedWrite')) {
        c.cmd({ op: 'write', bo: 2, ranges: [[0, new Uint8Array(4)]], fence: 1000 }); // 5, 4 bytes, fences 2
        await c.expect('signaled');
      } else {
        c.cmd({ op: 'write', bo: 2, ranges: [[0, new Uint8Array(4)]] });
        await c.fence();
      }
      const seq = c.cmd({ op: 'stats' });
      const s = await c.expect('statsData', seq);
      same(
        [s.bos, s.surfaces, s.bytes, s.commands, s.failed, s.fences, s.bytesWritten, s.bytesRead],
        [2, 0, 1024, 5, 1, 2, 19, 10],
        '[bos, surfaces, bytes, commands, failed, fences, bytesWritten, bytesRead]',
      );
      check(s.sessions >= 1 && s.deviceBos >= 2 && s.deviceBytes >= 1024, `device-wide counters ${s.sessions}, ${s.deviceBos}, ${s.deviceBytes} below this session's`);
    },
  },
  {
    id: 'ping.pong',
    section: '6.12',
    title: 'ping is answered with pong carrying its seq',
    async run(t) {
      const c = await t.session();
      const seq = c.cmd({ op: 'ping' });
      same(await c.next(), { op: 'pong', seq }, 'pong');
    },
  },
];
