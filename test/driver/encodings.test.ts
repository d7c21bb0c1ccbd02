// The writeback encodings (raw, spans, delta, deflate, auto) end to end: each keeps the device
// coherent, deltas send less, and the last-sent copies are forgotten whenever the device's copy
// may differ from them (a refused frame, a device write, a new session).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Feature } from '../../protocol/index.js';
import { ENCODINGS, type Encoding } from '../../src/index.js';
import { online, PS, until } from './fixtures.js';

async function encodingRig(encoding: Encoding, features?: Feature[]) {
  return online(features ? { features } : {}, { writeback: { encoding } });
}

test('every encoding keeps the device coherent; deltas and compression send fewer bytes than whole pages', async () => {
  const wire: Record<string, number> = {};
  for (const encoding of ENCODINGS) {
    const env = await encodingRig(encoding);
    try {
      const { drv, machine, mm } = env;
      const { bo, v } = env.buffer(16);
      machine.cpus[0]!.write(mm, v.start, new Uint8Array(16 * PS).fill(1));
      await drv.flush();
      const before = drv.writeback.stats.frameBytes;
      for (let round = 0; round < 5; round++) {
        for (let p = 0; p < 16; p++) machine.cpus[p % 2]!.write(mm, v.start + p * PS + 37 * round + p, Uint8Array.of(round + 2, p, 9));
        await drv.flush();
        assert.deepEqual((await drv.verifyCoherent(bo)).differing, [], `${encoding}, round ${round}`);
      }
      wire[encoding] = drv.writeback.stats.frameBytes - before;
      if (encoding === 'raw') assert.equal(drv.writeback.stats.spanBatches, 0);
      else assert.ok(drv.writeback.stats.spanBatches > 0, encoding);
      if (encoding === 'deflate') assert.ok(drv.writeback.stats.compressedBatches > 0);
    } finally {
      await env.close();
    }
  }
  // 5 rounds × 16 pages dirty: whole pages are ~320 KiB; deltas ~16-byte blocks per page.
  assert.ok(wire['raw']! > 16 * 5 * PS, `raw sends whole pages (${wire['raw']})`);
  assert.ok(wire['spans']! > 16 * 5 * PS, `spans sends whole pages (${wire['spans']})`);
  assert.ok(wire['delta']! < wire['raw']! / 20, `delta ${wire['delta']} vs raw ${wire['raw']}`);
  assert.ok(wire['auto']! <= wire['delta']! * 1.1, `auto ${wire['auto']} vs delta ${wire['delta']}`);
});

test('a device without writeSpans gets write frames; one without deflate gets uncompressed span frames', async () => {
  let env = await encodingRig('deflate', ['fencedWrite', 'seen', 'surfaces']);
  try {
    const { bo, v } = env.buffer(4);
    env.machine.cpus[0]!.write(env.mm, v.start + 5, Uint8Array.of(1, 2, 3));
    await env.drv.flush();
    assert.equal(env.drv.writeback.stats.spanBatches, 0);
    assert.deepEqual((await env.drv.verifyCoherent(bo)).differing, []);
  } finally {
    await env.close();
  }
  env = await encodingRig('deflate', ['fencedWrite', 'writeSpans']);
  try {
    const { bo, v } = env.buffer(4);
    env.machine.cpus[0]!.write(env.mm, v.start + 5, new Uint8Array(3 * PS).fill(4));
    await env.drv.flush();
    assert.ok(env.drv.writeback.stats.spanBatches > 0);
    assert.equal(env.drv.writeback.stats.compressedBatches, 0);
    assert.deepEqual((await env.drv.verifyCoherent(bo)).differing, []);
  } finally {
    await env.close();
  }
});

test('after a refused frame the retry sends whole blocks: the device never keeps bytes a delta assumed it had', async () => {
  const env = await encodingRig('delta');
  try {
    const { drv, dev, machine, mm } = env;
    const { bo, v } = env.buffer(4);
    machine.cpus[0]!.write(mm, v.start + PS, new Uint8Array(64).fill(1));
    await drv.flush(); // last sent: 1s
    dev.faults.failNth(1, { message: 'refused (injected)' });
    machine.cpus[0]!.write(mm, v.start + PS, new Uint8Array(64).fill(2));
    await assert.rejects(drv.flush()); // the device keeps 1s; the driver sent 2s
    await drv.flush(); // guest 2s again: equal to what was last sent, but not to the device
    assert.deepEqual((await drv.verifyCoherent(bo)).differing, []);
  } finally {
    await env.close();
  }
});

test('bytes the device wrote are sent whole next time, also when the CPU writes back what was last sent', async () => {
  const env = await encodingRig('delta');
  try {
    const { drv, dev, machine, mm } = env;
    const { bo, v } = env.buffer(4);
    machine.cpus[0]!.write(mm, v.start + 2 * PS, new Uint8Array(64).fill(5));
    await drv.flush(); // last sent: 5s
    dev.sessions()[0]!.gpuWrite(bo.id, [[2 * PS, new Uint8Array(64).fill(9)]]);
    await until(() => drv.conn.seenDeviceWrites === 1, 'the deviceWrite announcement');
    await machine.cpus[0]!.writeAsync(mm, v.start + 2 * PS, new Uint8Array(64).fill(5)); // after the readback: 9s → 5s
    await drv.flush();
    assert.deepEqual((await drv.verifyCoherent(bo)).differing, []);
    assert.equal(dev.sessions()[0]!.bo(bo.id)![2 * PS + 10], 5);
  } finally {
    await env.close();
  }
});

test('a new device session gets everything whole: the last-sent copies belong to the old one', async () => {
  const env = await encodingRig('delta');
  try {
    const { drv, dev, machine, mm } = env;
    const { bo, v } = env.buffer(4);
    machine.cpus[0]!.write(mm, v.start, new Uint8Array(4 * PS).fill(6));
    await drv.flush();
    await dev.restart();
    await until(() => drv.conn.sessions === 2 && drv.conn.isOpen, 'the reconnect');
    await drv.flush();
    assert.deepEqual((await drv.verifyCoherent(bo)).differing, []);
    assert.equal(dev.sessions()[0]!.bo(bo.id)![3 * PS + 1], 6);
  } finally {
    await env.close();
  }
});
