import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDevice, type Device } from '../../device/index.js';
import { WireClient } from '../../src/conformance/index.js';

describe('scripted faults', () => {
  let device: Device;
  before(async () => {
    device = await startDevice({ fenceLatency: 20 });
  });
  after(() => device.close());

  it('fails the Nth command with the scripted message; the fence carries it', async () => {
    const c = await WireClient.session(device.url);
    try {
      c.cmd({ op: 'defineBo', bo: 1, size: 8 });
      await c.fence();
      device.faults.failNth(2, { session: c.welcome!.session, message: 'GPU hang' });
      c.cmd({ op: 'write', bo: 1, ranges: [[0, Buffer.of(1)]] });
      const failed = c.cmd({ op: 'write', bo: 1, ranges: [[1, Buffer.of(2)]] });
      c.cmd({ op: 'write', bo: 1, ranges: [[2, Buffer.of(3)]] });
      assert.deepEqual(await c.next(), { op: 'error', code: 'injected', message: 'GPU hang', seq: failed });
      const s = await c.fence(5);
      assert.deepEqual(s, { op: 'signaled', seq: c.seq, fence: 5, ok: false, errors: 1, code: 'injected', message: 'GPU hang', errSeq: failed });
      assert.deepEqual([...device.session(c.welcome!.session)!.bo(1)!.subarray(0, 3)], [1, 0, 3]);
    } finally {
      await c.close();
    }
  });

  it('drops the connection without a close frame after N messages', async () => {
    const c = await WireClient.session(device.url);
    device.faults.dropAfter(3, { session: c.welcome!.session });
    c.cmd({ op: 'stats' });
    await c.expect('statsData');
    c.cmd({ op: 'stats' });
    await c.expect('statsData');
    c.cmd({ op: 'stats' });
    assert.equal((await c.waitClosed()).code, 1006);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(device.session(c.welcome!.session), undefined);
  });

  it('delays fences by latency plus the scripted delay, holding later replies behind them', async () => {
    const c = await WireClient.session(device.url);
    try {
      device.faults.delayFences(300, { count: 1 });
      const start = performance.now();
      const fence = c.cmd({ op: 'fence', fence: 1 });
      const stats = c.cmd({ op: 'stats' });
      assert.equal((await c.expect('signaled')).seq, fence);
      const waited = performance.now() - start;
      assert.equal((await c.expect('statsData')).seq, stats);
      assert.ok(waited >= 315, `signalled after ${waited.toFixed(0)} ms, expected ≥ 20 + 300`);
      const again = performance.now();
      await c.fence();
      const second = performance.now() - again;
      assert.ok(second >= 18 && second < 250, `second fence after ${second.toFixed(0)} ms (latency only)`);
    } finally {
      await c.close();
    }
  });

  it('restarts losing all state: clients see 1012, a new session starts empty', async () => {
    const a = await WireClient.session(device.url);
    const b = await WireClient.session(device.url);
    a.cmd({ op: 'defineBo', bo: 1, size: 4096 });
    b.cmd({ op: 'defineBo', bo: 1, size: 4096 });
    await Promise.all([a.fence(), b.fence()]);
    device.faults.stall();
    await device.restart();
    assert.deepEqual([(await a.waitClosed()).code, (await b.waitClosed()).code], [1012, 1012]);
    assert.deepEqual(device.sessions(), []);
    const c = await WireClient.session(device.url);
    try {
      assert.ok(![a.welcome!.session, b.welcome!.session].includes(c.welcome!.session), 'session ids are never reused');
      const seq = c.cmd({ op: 'readback', bo: 1, ranges: [[0, 1]] });
      assert.deepEqual(await c.expect('error'), { op: 'error', code: 'unknown_bo', message: 'no BO 1', seq });
      c.cmd({ op: 'stats' });
      const s = await c.expect('statsData');
      assert.deepEqual([s.sessions, s.deviceBos, s.deviceBytes], [1, 0, 0]);
    } finally {
      await c.close();
    }
  });
});
