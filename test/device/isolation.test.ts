import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDevice, type Device } from '../../device/index.js';
import { TestClient } from './client.js';

describe('isolation between clients', () => {
  let device: Device;
  let a: TestClient;
  let b: TestClient;
  before(async () => {
    device = await startDevice();
    [a, b] = await Promise.all([TestClient.connect(device.url, { name: 'a' }), TestClient.connect(device.url, { name: 'b' })]);
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
    await device.close();
  });

  it('keeps the same BO id apart in two sessions under interleaved traffic', async () => {
    a.cmd({ op: 'defineBo', bo: 1, size: 4096 });
    b.cmd({ op: 'defineBo', bo: 1, size: 8192 });
    for (let i = 0; i < 50; i++) {
      a.cmd({ op: 'write', bo: 1, ranges: [[i * 8, Buffer.alloc(8, 0xa0 + (i % 16))]] });
      b.cmd({ op: 'write', bo: 1, ranges: [[i * 8, Buffer.alloc(8, 0xb0 + (i % 16))]] });
    }
    const ra = a.cmd({ op: 'readback', bo: 1, ranges: [[0, 400]] });
    const rb = b.cmd({ op: 'readback', bo: 1, ranges: [[0, 400]] });
    const [da, db] = await Promise.all([a.expect('readbackData'), b.expect('readbackData')]);
    const want = (base: number): Buffer => Buffer.concat(Array.from({ length: 50 }, (_, i) => Buffer.alloc(8, base + (i % 16))));
    assert.deepEqual(da, { op: 'readbackData', seq: ra, bo: 1, ranges: [[0, want(0xa0)]] });
    assert.deepEqual(db, { op: 'readbackData', seq: rb, bo: 1, ranges: [[0, want(0xb0)]] });
    assert.equal(device.session(a.welcome!.session)!.bo(1)!.length, 4096);
    assert.equal(device.session(b.welcome!.session)!.bo(1)!.length, 8192);
  });

  it('does not let one client see or touch a BO only the other defined', async () => {
    a.cmd({ op: 'defineBo', bo: 2, size: 4096 });
    assert.equal((await a.fence()).ok, true);
    for (const msg of [
      { op: 'readback', bo: 2, ranges: [[0, 1]] },
      { op: 'write', bo: 2, ranges: [[0, Buffer.of(1)]] },
      { op: 'digest', bo: 2, offset: 0, length: 4096 },
      { op: 'destroyBo', bo: 2 },
    ]) {
      const seq = b.cmd(msg);
      assert.deepEqual(await b.expect('error'), { op: 'error', code: 'unknown_bo', message: 'no BO 2', seq });
    }
    const seq = b.cmd({ op: 'gpuWrite', bo: 1, session: a.welcome!.session, ranges: [[0, Buffer.of(1)]] });
    assert.deepEqual(await b.expect('error'), { op: 'error', code: 'forbidden', message: "only control connections may write another session's BO", seq });
    assert.deepEqual(device.session(a.welcome!.session)!.bo(2), new Uint8Array(4096));
  });

  it('frees only the closing client\'s BOs', async () => {
    const c = await TestClient.connect(device.url);
    c.cmd({ op: 'defineBo', bo: 1, size: 100 });
    await c.fence();
    await c.close();
    await new Promise((r) => setTimeout(r, 20));
    const seq = b.cmd({ op: 'stats' });
    const s = await b.expect('statsData');
    assert.deepEqual([s.seq, s.sessions, s.deviceBos, s.deviceBytes, s.bos], [seq, 2, 3, 4096 + 8192 + 4096, 1]);
  });
});
