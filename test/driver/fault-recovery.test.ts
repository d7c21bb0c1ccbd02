// Regression tests of the driver under device faults: each failed before its fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceError, IncompleteFlushError } from '../../src/index.js';
import { online, PS, until } from './fixtures.js';

test('a refused DMA frame fails its flush, naming the command, even when a foreign command failed first before the same fence', async () => {
  const env = await online();
  try {
    const { drv, dev, machine, mm } = env;
    const { bo, v } = env.buffer(4);
    await drv.flush();
    // Command 1: someone else's (here a raw destroyBo of an unknown BO) fails first; command 2, our write, is refused too.
    dev.faults.failNth(2, { message: 'DMA engine refused' });
    drv.conn.send({ op: 'destroyBo', bo: 999 });
    machine.cpus[0]!.write8(mm, v.start + PS + 5, 42);
    await assert.rejects(drv.flush(), (e: unknown) =>
      e instanceof DeviceError && e.code === 'injected' && e.command === `write BO ${bo.id}` && /DMA engine refused/.test(e.message));
    const device = dev.sessions()[0]!.bo(bo.id)!;
    assert.equal(device[PS + 5], 0, 'the refused write was not applied');
    await drv.flush(); // what it carried is dirty again
    assert.equal(dev.sessions()[0]!.bo(bo.id)![PS + 5], 42);
  } finally {
    await env.close();
  }
});

test('a refused defineBo is sent again before the BO\'s next upload; the flush in between rejects with the refusal', async () => {
  const env = await online();
  try {
    const { drv, dev, machine, mm } = env;
    dev.faults.failNth(1, { message: 'no room (injected)' });
    const { bo, v } = env.buffer(4);
    machine.cpus[0]!.write8(mm, v.start + 7, 9);
    await assert.rejects(drv.flush(), DeviceError);
    await until(() => bo.definition.refused, 'the refusal to arrive');
    const r = await drv.flush();
    assert.ok(r.batches >= 1);
    assert.deepEqual(dev.sessions()[0]!.boIds(), [bo.id]);
    assert.equal(dev.sessions()[0]!.bo(bo.id)![7], 9);
    assert.deepEqual((await drv.verifyCoherent(bo)).differing, []);
  } finally {
    await env.close();
  }
});

test('a define refused during the resync after a reconnect is retried: the copy becomes coherent without user action', async () => {
  const env = await online();
  try {
    const { drv, dev, machine, mm } = env;
    const fb = drv.createBo(8 * PS);
    const surface = drv.createSurface(fb, 0, { width: 64, height: 128, depth: 1, bytesPerPixel: 4 });
    const v = drv.mmap(mm, fb);
    machine.cpus[0]!.write(mm, v.start + 3 * PS, new Uint8Array(64).fill(5));
    await drv.flush();
    await dev.restart();
    dev.faults.failNth(2, { message: 'surface table full (injected)' }); // the resync's defineSurface
    await until(() => drv.conn.sessions === 2, 'the reconnect');
    const outcomes: string[] = [];
    for (let i = 0; i < 5 && outcomes.at(-1) !== 'ok'; i++) {
      outcomes.push(await drv.flush().then(() => 'ok', (e: Error) => e.constructor.name));
      await new Promise((r) => setTimeout(r, 60));
    }
    assert.equal(outcomes.at(-1), 'ok', `flush outcomes ${outcomes.join(', ')}`);
    assert.equal(surface.definition.refused, false);
    assert.equal(dev.sessions()[0]!.surfaces().length, 1);
    assert.deepEqual((await drv.verifyCoherent(fb)).differing, []);
  } finally {
    await env.close();
  }
});

test('a page waiting for a failed readback is never left behind by a flush that resolves', async () => {
  const env = await online();
  try {
    const { drv, dev, machine, mm } = env;
    const { bo, v } = env.buffer(8);
    await drv.flush();
    machine.cpus[0]!.write(mm, v.start + 2 * PS, new Uint8Array(100).fill(7)); // the CPU's write, not yet flushed
    dev.sessions()[0]!.gpuWrite(bo.id, [[2 * PS + 200, new Uint8Array(100).fill(9)]]);
    await until(() => drv.conn.seenDeviceWrites === 1, 'the announcement');
    dev.faults.failNth(1, { message: 'readback refused once' });
    const outcome = await drv.flush().then(() => 'resolved', (e: Error) => e);
    const device = dev.sessions()[0]!.bo(bo.id)!;
    if (outcome === 'resolved') {
      assert.equal(device[2 * PS], 7, 'a resolved flush carried the CPU\'s write');
    } else {
      assert.ok(outcome instanceof IncompleteFlushError || outcome instanceof DeviceError, String(outcome));
      await drv.flush();
    }
    assert.equal(dev.sessions()[0]!.bo(bo.id)![2 * PS], 7);
    assert.equal(dev.sessions()[0]!.bo(bo.id)![2 * PS + 250], 9);
    assert.deepEqual((await drv.verifyCoherent(bo)).differing, []);
  } finally {
    await env.close();
  }
});

test('a flush overlapping an earlier one that fails does not resolve without the earlier one\'s data', async () => {
  const env = await online({ fenceLatency: 20 });
  try {
    const { drv, dev, machine, mm } = env;
    const { bo, v } = env.buffer(4);
    await drv.flush();
    machine.cpus[0]!.write8(mm, v.start + PS, 11);
    dev.faults.failNth(1, { message: 'first round refused' });
    const first = drv.flush().then(() => 'resolved', (e: Error) => e.message);
    await until(() => drv.writeback.stats.rounds === 2, 'the first round to start');
    machine.cpus[0]!.write8(mm, v.start + 2 * PS, 22);
    const second = await drv.flush().then(() => 'resolved', (e: Error) => e.message);
    assert.match(await first, /first round refused/);
    if (second === 'resolved') assert.equal(dev.sessions()[0]!.bo(bo.id)![PS], 11, 'a resolved flush holds every earlier write');
    else assert.match(second, /first round refused/);
    await drv.flush();
    assert.deepEqual((await drv.verifyCoherent(bo)).differing, []);
  } finally {
    await env.close();
  }
});

test('a flush that began while an earlier one was unsettled fails with it, also when that one failed long before this one\'s fence', async () => {
  // Paced at 8 MB/s, the second round's 62 pages take ~30 ms to apply: the first round's
  // refusal has settled by the time the second's fence is signalled.
  const env = await online({ bandwidth: 8_000_000 });
  try {
    const { drv, dev, machine, mm } = env;
    const { bo, v } = env.buffer(64);
    await drv.flush();
    machine.cpus[0]!.write8(mm, v.start + PS, 11);
    dev.faults.failNth(1, { message: 'first round refused' });
    const first = drv.flush().then(() => 'resolved', (e: Error) => e.message);
    for (let p = 2; p < 64; p++) machine.cpus[0]!.write8(mm, v.start + p * PS, 22);
    const second = drv.flush().then(() => 'resolved', (e: Error) => e.message);
    assert.match(await first, /first round refused/);
    assert.match(await second, /first round refused/, 'the first round\'s page is not on the device: the second flush must not resolve');
    assert.equal(dev.sessions()[0]!.bo(bo.id)![PS], 0);
    await drv.flush();
    assert.deepEqual((await drv.verifyCoherent(bo)).differing, []);
  } finally {
    await env.close();
  }
});

test('a refused destroy is sent again: the device frees the memory that later definitions need', async () => {
  const env = await online({ limits: { maxTotalBytes: 8 * PS } });
  try {
    const { drv, dev, machine, mm } = env;
    const a = drv.createBo(4 * PS);
    drv.createSurface(a, 0, { width: 1024, height: 4, depth: 1, bytesPerPixel: 4 });
    await drv.flush();
    dev.faults.failNth(1, { message: 'destroy refused once' }); // destroySurface; destroyBo then fails with in_use
    drv.destroyBo(a);
    const { bo: b, v } = env.buffer(6); // fits only once A is gone
    machine.cpus[0]!.write8(mm, v.start + 5 * PS, 3);
    const outcomes: string[] = [];
    for (let i = 0; i < 4 && outcomes.at(-1) !== 'ok'; i++) {
      outcomes.push(await drv.flush().then(() => 'ok', (e: Error) => (e as DeviceError).code ?? e.message));
    }
    assert.equal(outcomes.at(-1), 'ok', `flush outcomes ${outcomes.join(', ')}`);
    assert.deepEqual(dev.sessions()[0]!.boIds(), [b.id]);
    assert.equal(dev.sessions()[0]!.bo(b.id)![5 * PS], 3);
  } finally {
    await env.close();
  }
});
