import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceImage, readbackBatches } from '../../src/ui/index.js';
import { online, PS } from '../driver/fixtures.js';

/** Pages of two byte arrays that differ. */
function differing(a: Uint8Array, b: Uint8Array): number[] {
  const out: number[] = [];
  for (let p = 0; p * PS < a.length; p++) if (!Buffer.from(a.subarray(p * PS, (p + 1) * PS)).equals(b.subarray(p * PS, (p + 1) * PS))) out.push(p);
  return out;
}

for (const path of ['in-process', 'wire'] as const) {
  test(`${path}: the image is the device's copy, not guest memory, and each refresh names the pages that changed`, async () => {
    // Small messages and few ranges per message, so the wire path must split its digests and readbacks.
    const o = await online({ limits: { maxMessageSize: 3 * PS, maxRanges: 3 } });
    try {
      const { bo, v } = o.buffer(10);
      const image = new DeviceImage(o.drv, bo, path === 'in-process' ? o.dev : null);
      const session = () => o.dev.session(o.drv.conn.welcome!.session)!;
      assert.equal(await image.refresh(), false, 'a fresh BO is zero on both sides (or not yet defined on the device)');
      const cpu = o.machine.cpus[0]!;
      for (const p of [0, 2, 3, 4, 5, 9]) cpu.write(o.mm, v.start + p * PS + 100, new Uint8Array([p + 1, 7, 7]));
      await o.drv.flush();
      cpu.write(o.mm, v.start + 7 * PS, new Uint8Array([0xee])); // in guest memory only: not flushed
      assert.equal(await image.refresh(), true);
      assert.deepEqual(image.changedSince(0), [0, 2, 3, 4, 5, 9]);
      assert.deepEqual(Buffer.from(image.bytes), Buffer.from(session().bo(bo.id)!), 'equal to the device copy');
      assert.equal(image.bytes[7 * PS], 0, 'not guest memory');
      const first = image.current;

      session().gpuWrite(bo.id, [[8 * PS, new Uint8Array([1, 2, 3])]]);
      assert.equal(await image.refresh(), true);
      assert.deepEqual(image.changedSince(first), [8], 'only the page the device changed');
      assert.deepEqual(Array.from(image.bytes.subarray(8 * PS, 8 * PS + 3)), [1, 2, 3]);
      assert.deepEqual(differing(image.bytes, session().bo(bo.id)!), []);

      const commands = session().counters.commands;
      assert.equal(await image.refresh(), false, 'nothing written since');
      assert.ok(session().counters.commands - commands <= 1, 'an unchanged device costs at most one stats request');
      // A refresh asked for while one runs does not join it: it reads again, after it.
      const before = session().counters.commands;
      const one = image.refresh();
      const two = image.refresh();
      assert.notEqual(one, two);
      await Promise.all([one, two]);
      if (path === 'wire') assert.equal(session().counters.commands - before, 2, 'two reads (one stats request each)');
    } finally {
      await o.close();
    }
  });
}

test('wire: a page that changes between the digest and the readback, then back again, is still read afresh', async () => {
  const o = await online();
  try {
    const { bo } = o.buffer(4);
    await o.drv.flush();
    const session = () => o.dev.session(o.drv.conn.welcome!.session)!;
    const image = new DeviceImage(o.drv, bo, null);
    const X = new Uint8Array(PS).fill(0x11);
    const Y = new Uint8Array(PS).fill(0x22);
    // The device changes page 2 once more right after answering the digest, before the readback.
    const conn = o.drv.conn;
    const request = conn.request.bind(conn);
    let between: (() => void) | null = () => session().gpuWrite(bo.id, [[2 * PS, Y]]);
    conn.request = (async (cmd: Parameters<typeof request>[0]) => {
      const reply = await request(cmd);
      if (cmd.op === 'digest' && between !== null) {
        between();
        between = null;
      }
      return reply;
    }) as typeof conn.request;
    session().gpuWrite(bo.id, [[2 * PS, X]]);
    assert.equal(await image.refresh(), true);
    assert.equal(image.bytes[2 * PS], 0x22, 'read after the second change');
    session().gpuWrite(bo.id, [[2 * PS, X]]); // back to what the digest saw
    await image.refresh();
    assert.equal(image.bytes[2 * PS], 0x11, 'the held digest describes the held bytes, so the change back is seen');
  } finally {
    await o.close();
  }
});

test('without a session the image cannot be read and stays as it was', async () => {
  for (const inProcess of [true, false]) {
    const o = await online({}, { reconnect: false });
    const { bo } = o.buffer(2);
    const image = new DeviceImage(o.drv, bo, inProcess ? o.dev : null);
    await o.drv.close();
    await assert.rejects(image.refresh(), /session/);
    assert.equal(image.current, 0);
    await o.dev.close();
  }
});

test('readback batches: consecutive pages merged, at most maxRanges spans and the reply within maxMessageSize', () => {
  const pages = [0, 1, 2, 5, 7, 8, 20];
  const b = readbackBatches(pages, PS, 21 * PS - 100, 2, 1 << 20);
  assert.deepEqual(b, [[[0, 3 * PS], [5 * PS, PS]], [[7 * PS, 2 * PS], [20 * PS, PS - 100]]]);
  const small = readbackBatches([0, 1, 2, 3], PS, 4 * PS, 100, 64 + 2 * (PS + 16));
  for (const batch of small) {
    const reply = 64 + batch.reduce((n, [, len]) => n + len + 16, 0);
    assert.ok(reply <= 64 + 2 * (PS + 16), `reply of ${reply} bytes`);
  }
  assert.deepEqual(small.flat().reduce((n, [, len]) => n + len, 0), 4 * PS, 'every byte requested once');
  assert.deepEqual(small.flat()[0], [0, 2 * PS + 16], 'a long run is split where the reply is full');
  assert.throws(() => readbackBatches([0], PS, PS, 0, 1 << 20), RangeError);
  assert.throws(() => readbackBatches([0], PS, PS, 4, 70), RangeError);
});
