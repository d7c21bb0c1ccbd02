import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDevice, type Device } from '../../device/index.js';
import { TestClient } from './client.js';

describe('a fence carried by a DMA frame', () => {
  let device: Device;
  before(async () => {
    device = await startDevice();
  });
  after(() => device.close());

  it('is signalled right after the frame is applied, with its data in place', async () => {
    const c = await TestClient.connect(device.url);
    try {
      c.cmd({ op: 'defineBo', bo: 1, size: 4096 });
      const seq = c.cmd({ op: 'write', bo: 1, ranges: [[10, new Uint8Array([1, 2, 3])]], fence: 77 });
      const s = await c.expect('signaled');
      assert.deepEqual([s.fence, s.seq, s.ok], [77, seq, true]);
      assert.deepEqual([...device.sessions().at(-1)!.bo(1)!.subarray(10, 13)], [1, 2, 3]);
    } finally {
      await c.close();
    }
  });

  it('is signalled also when the frame is rejected, carrying the device\'s error', async () => {
    const c = await TestClient.connect(device.url);
    try {
      const seq = c.cmd({ op: 'write', bo: 9, ranges: [[0, new Uint8Array(1)]], fence: 5 });
      const err = await c.expect('error');
      assert.equal(err.code, 'unknown_bo');
      const s = await c.expect('signaled');
      assert.deepEqual([s.fence, s.ok, s.code, s.errSeq], [5, false, 'unknown_bo', seq]);
    } finally {
      await c.close();
    }
  });
});
