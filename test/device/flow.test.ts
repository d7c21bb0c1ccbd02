import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDevice, type Device } from '../../device/index.js';
import { WireClient } from '../../src/conformance/index.js';

const KiB = 1024;

describe('flow control', () => {
  let device: Device;
  const hwm = 64 * KiB;
  const limits = { maxMessageSize: 64 * KiB };
  before(async () => {
    device = await startDevice({ highWaterMark: hwm, limits });
  });
  after(() => device.close());

  it('pauses reading instead of buffering a fast writer without bound, and paces DMA', async () => {
    const slow = await startDevice({ bandwidth: 4 * 1024 * KiB, highWaterMark: hwm, limits });
    const c = await WireClient.session(slow.url);
    try {
      c.cmd({ op: 'defineBo', bo: 1, size: 1024 * KiB });
      const start = performance.now();
      for (let i = 0; i < 128; i++) c.cmd({ op: 'write', bo: 1, ranges: [[(i % 64) * 16 * KiB, Buffer.alloc(16 * KiB, i)]] });
      assert.equal((await c.fence()).ok, true);
      const elapsed = performance.now() - start;
      const { counters } = slow.session(c.welcome!.session)!;
      assert.ok(counters.pauses >= 1, `pauses ${counters.pauses}`);
      // After pause(), frames already read from the socket still arrive: at most about one
      // socket read (64 KiB) plus one message beyond the high-water mark.
      assert.ok(counters.maxBacklog <= hwm + 2 * 64 * KiB, `maxBacklog ${counters.maxBacklog}`);
      // 2 MiB at 4 MiB/s takes ~500 ms.
      assert.ok(elapsed >= 400, `elapsed ${elapsed.toFixed(0)} ms`);
      assert.equal(slow.session(c.welcome!.session)!.bo(1)![0], 64);
    } finally {
      await c.close();
      await slow.close();
    }
  });

  it('stops applying while its replies are not being read, and resumes in order', async () => {
    const c = await WireClient.session(device.url);
    try {
      c.cmd({ op: 'defineBo', bo: 1, size: 60 * KiB });
      await c.fence();
      c.ws.pause(); // the driver stops reading: replies pile up in the kernel, then in ws
      const total = 256; // 15 MiB of replies, more than loopback socket buffers hold
      const first = c.seq + 1;
      for (let i = 0; i < total; i++) c.cmd({ op: 'readback', bo: 1, ranges: [[0, 60 * KiB]] });
      await new Promise((r) => setTimeout(r, 300));
      const applied = device.session(c.welcome!.session)!.counters.commands;
      assert.ok(applied < 1 + total, `applied ${applied} of ${1 + total} while replies were unread`);
      c.ws.resume();
      for (let i = 0; i < total; i++) assert.equal((await c.expect('readbackData')).seq, first + i);
    } finally {
      await c.close();
    }
  });

  it('a command arriving while an earlier one waits for DMA pacing is applied after it, not at once', async () => {
    // The pump takes a paced write off the queue and sleeps before applying it: the queue is
    // empty then, but a fence arriving meanwhile must still wait for the write.
    const paced = await startDevice({ bandwidth: 1024 * KiB, highWaterMark: hwm, limits });
    const c = await WireClient.session(paced.url);
    try {
      c.cmd({ op: 'defineBo', bo: 1, size: 48 * KiB });
      await c.fence();
      const data = Buffer.alloc(48 * KiB, 9);
      c.cmd({ op: 'write', bo: 1, ranges: [[0, data]] }); // 48 KiB at 1 MiB/s: applied ~47 ms later
      await new Promise((r) => setTimeout(r, 10));
      const fence = c.cmd({ op: 'fence', fence: 2 });
      assert.deepEqual(await c.next(), { op: 'signaled', seq: fence, fence: 2, ok: true });
      assert.equal(paced.session(c.welcome!.session)!.bo(1)![0], 9, 'the fence was signalled after the write before it');
    } finally {
      await c.close();
      await paced.close();
    }
  });

  it('holds commands while stalled, answers ping, and applies them on release', async () => {
    const c = await WireClient.session(device.url);
    try {
      c.cmd({ op: 'defineBo', bo: 1, size: 16 });
      await c.fence();
      device.faults.stall({ session: c.welcome!.session });
      c.cmd({ op: 'write', bo: 1, ranges: [[0, Buffer.of(5)]] });
      const fence = c.cmd({ op: 'fence', fence: 9 });
      const ping = c.cmd({ op: 'ping' });
      assert.deepEqual(await c.next(), { op: 'pong', seq: ping });
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(c.received.length, 3, 'welcome, signaled, pong only');
      assert.equal(device.session(c.welcome!.session)!.bo(1)![0], 0);
      device.faults.release();
      assert.deepEqual(await c.next(), { op: 'signaled', seq: fence, fence: 9, ok: true });
      assert.equal(device.session(c.welcome!.session)!.bo(1)![0], 5);
    } finally {
      await c.close();
    }
  });
});
