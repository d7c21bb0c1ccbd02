import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDevice, type Device } from '../../device/index.js';
import { pageDigests } from '../../protocol/index.js';
import { TestClient } from './client.js';

/** Deterministic pattern bytes. */
export function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed * 13) & 0xff;
  return b;
}

describe('commands', () => {
  let device: Device;
  let c: TestClient;
  before(async () => {
    device = await startDevice({ control: true });
    c = await TestClient.connect(device.url, { name: 'cmds' });
  });
  after(async () => {
    await c.close();
    await device.close();
  });
  const view = () => device.session(c.welcome!.session)!;

  it('defines a zeroed BO, writes ranges, reads them back', async () => {
    c.cmd({ op: 'defineBo', bo: 1, size: 3 * 4096 });
    c.cmd({ op: 'write', bo: 1, ranges: [[10, pattern(100, 1)], [8192, pattern(4096, 2)]] });
    const seq = c.cmd({ op: 'readback', bo: 1, ranges: [[0, 12], [8190, 4]] });
    assert.deepEqual(await c.expect('readbackData'), {
      op: 'readbackData', seq, bo: 1,
      ranges: [[0, Buffer.concat([Buffer.alloc(10), pattern(2, 1)])], [8190, Buffer.concat([Buffer.alloc(2), pattern(2, 2)])]],
    });
    const expected = Buffer.alloc(3 * 4096);
    pattern(100, 1).copy(expected, 10);
    pattern(4096, 2).copy(expected, 8192);
    assert.deepEqual(Buffer.from(view().bo(1)!), expected);
    assert.deepEqual((await c.fence(41)), { op: 'signaled', seq: c.seq, fence: 41, ok: true });
  });

  it('answers a digest with per-page hashes of the device copy', async () => {
    const seq = c.cmd({ op: 'digest', bo: 1, offset: 4096, length: 8192 });
    const d = await c.expect('digestData');
    assert.deepEqual(d, { op: 'digestData', seq, bo: 1, offset: 4096, pageSize: 4096, hashes: Buffer.from(pageDigests(view().bo(1)!.subarray(4096), 4096)) });
    assert.equal(d.hashes.length, 16);
  });

  it('writes surface boxes through the row and image pitch into the BO', async () => {
    // 4x3x2 surface, 2 bytes per pixel, rows padded to 12 bytes, slices to 40 bytes, at offset 100.
    c.cmd({ op: 'defineBo', bo: 2, size: 200 });
    c.cmd({ op: 'defineSurface', sid: 5, bo: 2, offset: 100, width: 4, height: 3, depth: 2, bytesPerPixel: 2, rowPitch: 12, imagePitch: 40 });
    const box = pattern(2 * 2 * 2 * 2, 3); // w=2, h=2, d=2 at (1,1,0)
    c.cmd({ op: 'writeSurface', sid: 5, boxes: [[1, 1, 0, 2, 2, 2, box]] });
    await c.fence();
    const bo = view().bo(2)!;
    const expected = new Uint8Array(200);
    for (let z = 0; z < 2; z++) {
      for (let y = 0; y < 2; y++) {
        const at = 100 + z * 40 + (1 + y) * 12 + 1 * 2;
        expected.set(box.subarray((z * 2 + y) * 4, (z * 2 + y) * 4 + 4), at);
      }
    }
    assert.deepEqual(bo, expected);
    assert.deepEqual(view().surfaces(), [{ sid: 5, bo: 2, offset: 100, width: 4, height: 3, depth: 2, bytesPerPixel: 2, rowPitch: 12, imagePitch: 40 }]);
  });

  it('refuses to destroy a BO that backs a surface, then destroys both', async () => {
    const refused = c.cmd({ op: 'destroyBo', bo: 2 });
    assert.deepEqual(await c.expect('error'), { op: 'error', code: 'in_use', message: 'BO 2 backs 1 surface(s)', seq: refused });
    c.cmd({ op: 'destroySurface', sid: 5 });
    c.cmd({ op: 'destroyBo', bo: 2 });
    const s = await c.fence();
    assert.deepEqual([s.ok, s.errors, s.code, s.errSeq], [false, 1, 'in_use', refused]);
    assert.deepEqual(view().boIds(), [1]);
    assert.deepEqual(view().surfaces(), []);
  });

  it('applies gpuWrite and announces it as deviceWrite', async () => {
    c.cmd({ op: 'gpuWrite', bo: 1, ranges: [[5, Buffer.from([0xaa, 0xbb])]] });
    assert.deepEqual(await c.expect('deviceWrite'), { op: 'deviceWrite', bo: 1, ranges: [[5, Buffer.from([0xaa, 0xbb])]] });
    assert.deepEqual([...view().bo(1)!.subarray(5, 7)], [0xaa, 0xbb]);
  });

  it('announces in-process GPU writes', async () => {
    view().gpuWrite(1, [[0, Uint8Array.of(7)], [4095, Uint8Array.of(8, 9)]]);
    assert.deepEqual(await c.expect('deviceWrite'), { op: 'deviceWrite', bo: 1, ranges: [[0, Buffer.of(7)], [4095, Buffer.of(8, 9)]] });
    assert.deepEqual([...view().bo(1)!.subarray(4095, 4097)], [8, 9]);
    assert.throws(() => view().gpuWrite(1, [[3 * 4096, Uint8Array.of(1)]]), { code: 'out_of_range' });
  });

  it('lets a control connection write another session\'s BO', async () => {
    const ctl = await TestClient.connect(device.url, { role: 'control' });
    try {
      assert.ok(ctl.welcome!.features.includes('control'));
      ctl.cmd({ op: 'gpuWrite', bo: 1, session: c.welcome!.session, ranges: [[100, Buffer.from('gpu')]] });
      assert.deepEqual(await c.expect('deviceWrite'), { op: 'deviceWrite', bo: 1, ranges: [[100, Buffer.from('gpu')]] });
      assert.equal((await ctl.fence()).ok, true);
      const bad = ctl.cmd({ op: 'gpuWrite', bo: 1, session: 999, ranges: [] });
      assert.deepEqual(await ctl.expect('error'), { op: 'error', code: 'unknown_bo', message: 'no session 999', seq: bad });
    } finally {
      await ctl.close();
    }
  });

  it('answers stats and ping', async () => {
    const ping = c.cmd({ op: 'ping' });
    assert.deepEqual(await c.expect('pong'), { op: 'pong', seq: ping });
    const seq = c.cmd({ op: 'stats' });
    const s = await c.expect('statsData');
    assert.deepEqual(s, {
      // 10 applied before stats: defineBo write readback digest defineBo defineSurface writeSurface
      // destroySurface destroyBo gpuWrite (the refused destroyBo counts as failed).
      op: 'statsData', seq, bos: 1, surfaces: 0, bytes: 3 * 4096, commands: 10, failed: 1, fences: 3,
      bytesWritten: 100 + 4096 + 16 + 2 + 3 + 3, bytesRead: 16, sessions: 1, deviceBos: 1, deviceBytes: 3 * 4096,
    });
    assert.equal(view().counters.commands, 11, 'stats itself counts once applied');
  });
});
