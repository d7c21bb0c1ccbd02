import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { startDevice, type Device } from '../../device/index.js';
import { TestClient } from './client.js';

const KiB = 1024;

describe('bad input', () => {
  let device: Device;
  before(async () => {
    device = await startDevice({
      limits: { maxBos: 3, maxBoSize: 64 * KiB, maxTotalBytes: 96 * KiB, maxSurfaces: 2, maxMessageSize: 64 * KiB, maxRanges: 8 },
    });
  });
  after(() => device.close());

  /** Runs `body` on a fresh session whose BO 1 (16 KiB) holds 0x11 everywhere. */
  async function withSession(body: (c: TestClient, bo: () => Uint8Array) => Promise<void>): Promise<void> {
    const c = await TestClient.connect(device.url);
    try {
      c.cmd({ op: 'defineBo', bo: 1, size: 16 * KiB });
      c.cmd({ op: 'write', bo: 1, ranges: [[0, Buffer.alloc(16 * KiB, 0x11)]] });
      assert.equal((await c.fence()).ok, true);
      await body(c, () => device.session(c.welcome!.session)!.bo(1)!);
    } finally {
      await c.close();
    }
  }

  /** Sends a command, expects an error for it, then a failed fence naming it; the session lives on. */
  async function rejected(c: TestClient, msg: Record<string, unknown> & { op: string }, code: string, text: RegExp): Promise<void> {
    const seq = c.cmd(msg);
    const e = await c.expect('error');
    assert.deepEqual([e.code, e.seq], [code, seq], e.message);
    assert.match(e.message, text);
    const s = await c.fence();
    assert.deepEqual([s.ok, s.errors, s.code, s.message, s.errSeq], [false, 1, code, e.message, seq]);
  }

  it('rejects wrong field types with bad_message and keeps the connection', () =>
    withSession(async (c) => {
      await rejected(c, { op: 'write', bo: 1, ranges: [[0, 'text']] }, 'bad_message', /ranges\[0\]\[1\]: expected bin/);
      await rejected(c, { op: 'defineBo', bo: 'x', size: 1 }, 'bad_message', /defineBo\.bo: expected u32/);
      assert.equal((await c.fence()).ok, true, 'a fence with no failure since the previous one is ok');
    }));

  it('rejects an unknown op, keeping its seq', () =>
    withSession((c) => rejected(c, { op: 'teleport', bo: 1 }, 'unknown_op', /unknown op 'teleport'/)));

  it('rejects a message without a readable seq, reporting no seq', () =>
    withSession(async (c) => {
      c.send([1, 2, 3]);
      assert.deepEqual(await c.expect('error'), { op: 'error', code: 'bad_message', message: 'message is not a map (got array(3))' });
      const s = await c.fence();
      assert.deepEqual([s.ok, s.errors, s.errSeq], [false, 1, undefined]);
    }));

  it('rejects unknown BOs and surfaces', () =>
    withSession(async (c) => {
      await rejected(c, { op: 'write', bo: 9, ranges: [] }, 'unknown_bo', /no BO 9/);
      await rejected(c, { op: 'readback', bo: 9, ranges: [] }, 'unknown_bo', /no BO 9/);
      await rejected(c, { op: 'writeSurface', sid: 3, boxes: [] }, 'unknown_surface', /no surface 3/);
      await rejected(c, { op: 'destroySurface', sid: 3 }, 'unknown_surface', /no surface 3/);
      await rejected(c, { op: 'defineSurface', sid: 3, bo: 9, offset: 0, width: 1, height: 1, depth: 1, bytesPerPixel: 1, rowPitch: 1, imagePitch: 1 }, 'unknown_bo', /no BO 9/);
    }));

  it('never applies part of a write with one out-of-range range', () =>
    withSession(async (c, bo) => {
      const ranges = [[0, Buffer.alloc(100, 0xee)], [16 * KiB - 1, Buffer.alloc(2, 0xee)]];
      await rejected(c, { op: 'write', bo: 1, ranges }, 'out_of_range', /range 1 \[16383, 16385\) outside BO of 16384 bytes/);
      await rejected(c, { op: 'gpuWrite', bo: 1, ranges }, 'out_of_range', /range 1/);
      assert.deepEqual(bo(), new Uint8Array(16 * KiB).fill(0x11));
    }));

  it('checks surface layouts and boxes, never applying a rejected box list', () =>
    withSession(async (c, bo) => {
      const surface = { op: 'defineSurface', sid: 1, bo: 1, offset: 0, width: 8, height: 8, depth: 1, bytesPerPixel: 4 };
      await rejected(c, { ...surface, rowPitch: 31, imagePitch: 256 }, 'bad_message', /rowPitch 31 < width·bytesPerPixel 32/);
      await rejected(c, { ...surface, rowPitch: 32, imagePitch: 255 }, 'bad_message', /imagePitch 255 < rowPitch·height 256/);
      await rejected(c, { ...surface, width: 0, rowPitch: 32, imagePitch: 256 }, 'bad_message', /empty dimension/);
      await rejected(c, { ...surface, offset: 16 * KiB - 100, rowPitch: 32, imagePitch: 256 }, 'out_of_range', /surface ends at byte 16540, BO has 16384/);
      c.cmd({ ...surface, rowPitch: 32, imagePitch: 256 });
      const good = [0, 0, 0, 1, 1, 1, Buffer.alloc(4, 0xee)];
      await rejected(c, { op: 'writeSurface', sid: 1, boxes: [good, [7, 7, 0, 2, 1, 1, Buffer.alloc(8)]] }, 'out_of_range', /box 1 .* outside surface 8x8x1/);
      await rejected(c, { op: 'writeSurface', sid: 1, boxes: [good, [0, 0, 0, 2, 1, 1, Buffer.alloc(7)]] }, 'out_of_range', /box 1 carries 7 bytes, needs 8/);
      await rejected(c, { ...surface, rowPitch: 32, imagePitch: 256 }, 'exists', /surface 1 already defined/);
      assert.deepEqual(bo(), new Uint8Array(16 * KiB).fill(0x11));
    }));

  it('checks digest alignment and size', () =>
    withSession(async (c) => {
      await rejected(c, { op: 'digest', bo: 1, offset: 100, length: 4096 }, 'misaligned', /offset 100 is not a multiple of pageSize 4096/);
      await rejected(c, { op: 'digest', bo: 1, offset: 4096, length: 16 * KiB }, 'out_of_range', /outside BO/);
    }));

  it('enforces every limit', () =>
    withSession(async (c) => {
      await rejected(c, { op: 'defineBo', bo: 2, size: 64 * KiB + 1 }, 'limit', /BO size 65537 not in \[1, maxBoSize 65536\]/);
      await rejected(c, { op: 'defineBo', bo: 2, size: 0 }, 'limit', /BO size 0/);
      c.cmd({ op: 'defineBo', bo: 2, size: 64 * KiB });
      await rejected(c, { op: 'defineBo', bo: 3, size: 16 * KiB + 1 }, 'limit', /maxTotalBytes 98304 would be exceeded/);
      c.cmd({ op: 'defineBo', bo: 3, size: 4 });
      await rejected(c, { op: 'defineBo', bo: 4, size: 4 }, 'limit', /maxBos 3 reached/);
      await rejected(c, { op: 'defineBo', bo: 3, size: 4 }, 'exists', /BO 3 already defined/);
      const ranges = Array.from({ length: 9 }, (_, i) => [i, Buffer.alloc(1)]);
      await rejected(c, { op: 'write', bo: 1, ranges }, 'limit', /9 entries exceed maxRanges 8/);
      await rejected(c, { op: 'digest', bo: 2, offset: 0, length: 9 * 4096 }, 'limit', /9 entries exceed maxRanges 8/);
      await rejected(c, { op: 'readback', bo: 2, ranges: [[0, 64 * KiB]] }, 'limit', /would exceed maxMessageSize 65536/);
      const s = { op: 'defineSurface', bo: 3, offset: 0, width: 1, height: 1, depth: 1, bytesPerPixel: 1, rowPitch: 1, imagePitch: 1 };
      c.cmd({ ...s, sid: 1 });
      c.cmd({ ...s, sid: 2 });
      await rejected(c, { ...s, sid: 3 }, 'limit', /maxSurfaces 2 reached/);
    }));

  async function closesWith(send: (c: TestClient) => void, code: number, errorCode?: string): Promise<void> {
    const c = await TestClient.connect(device.url);
    c.cmd({ op: 'stats' });
    await c.expect('statsData');
    send(c);
    if (errorCode !== undefined) assert.equal((await c.expect('error')).code, errorCode);
    assert.equal((await c.waitClosed()).code, code);
  }

  it('closes 1002 on a repeated or decreasing seq', async () => {
    await closesWith((c) => c.send({ op: 'stats', seq: c.seq }), 1002, 'bad_seq');
    await closesWith((c) => c.send({ op: 'ping', seq: 0 }), 1002, 'bad_seq');
  });
  it('closes 1007 on malformed MessagePack', () => closesWith((c) => c.ws.send(Buffer.from([0x92, 0x01])), 1007, 'malformed'));
  it('closes 1003 on a text frame', () => closesWith((c) => c.ws.send('stats'), 1003, 'text_frame'));
  it('closes 1009 on an oversize message', () =>
    closesWith((c) => c.cmd({ op: 'write', bo: 1, ranges: [[0, Buffer.alloc(64 * KiB)]] }), 1009));

  it('survives random frames: each is answered or closes with a documented code', async () => {
    const documented = new Set([1002, 1003, 1007, 1008, 1009]);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 4 }), async (frames) => {
        const c = await TestClient.connect(device.url);
        for (const f of frames) c.ws.send(f);
        c.send({ op: 'fence', seq: 2 ** 52, fence: 1 }); // seq above anything random, so it is accepted if still open
        const outcome = await Promise.race([c.closed, c.waitSignal()]);
        if ('op' in outcome) assert.equal(outcome.fence, 1);
        else assert.ok(documented.has(outcome.code), `closed with ${outcome.code}`);
        await c.close();
      }),
      { numRuns: 60 },
    );
    const fresh = await TestClient.connect(device.url);
    assert.equal((await fresh.fence()).ok, true);
    await fresh.close();
  });
});
