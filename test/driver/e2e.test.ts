// End to end over real sockets on an ephemeral loopback port: driver ⇄ embedded device.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CancelledError, DeviceError, DeviceLostError } from '../../src/index.js';
import { propertySeed } from '../core/fixtures.js';
import { online, PS, until } from './fixtures.js';
import { decodeDriverFrame, ProtocolError } from '../../protocol/index.js';

test('random workloads: the device copy equals guest memory at every fence', async (t) => {
  const seed = propertySeed(4242);
  t.diagnostic(`fast-check seed ${seed}`);
  const env = await online();
  try {
    const { drv, machine, mm } = env;
    const buf = drv.createBo(40 * PS);
    drv.createBufferResource(buf, 0, 24 * PS);
    drv.createBufferResource(buf, 24 * PS, 16 * PS); // two resources share one BO
    const fb = drv.createBo(600 * PS); // ≥ 512 pages: starts in MKWRITE
    // Resources tile the BO exactly: bytes outside every resource are never uploaded.
    drv.createSurface(fb, 0, { width: 256, height: 120, depth: 1, bytesPerPixel: 4 }); // 30 pages
    drv.createBufferResource(fb, 30 * PS, 570 * PS);
    const vb = drv.mmap(mm, buf);
    const vf = drv.mmap(mm, fb);
    const op = fc.record({
      cpu: fc.nat(1),
      target: fc.boolean(),
      offset: fc.nat(600 * PS - 1),
      len: fc.integer({ min: 1, max: 3 * PS }),
      value: fc.integer({ min: 1, max: 255 }),
      flushAfter: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
        const inFlight: Array<Promise<unknown>> = [];
        for (const o of ops) {
          const vma = o.target ? vb : vf;
          const size = vma.end - vma.start;
          const off = o.offset % size;
          machine.cpus[o.cpu]!.write(mm, vma.start + off, new Uint8Array(Math.min(o.len, size - off)).fill(o.value));
          if (o.flushAfter) inFlight.push(drv.flush()); // not awaited: writes continue while it is in flight
        }
        await Promise.all(inFlight);
        for (const bo of [buf, fb]) {
          const r = await drv.verifyCoherent(bo);
          assert.deepEqual(r.differing, [], `BO ${bo.id} differs`);
        }
      }),
      { seed, numRuns: 25 },
    );
  } finally {
    await env.close();
  }
});

test('a device error surfaces as a rejected fence carrying the device\'s message, and the next flush repairs the copy', async () => {
  const env = await online();
  try {
    const { drv, dev, machine, mm } = env;
    const { bo, v } = env.buffer(4);
    await drv.flush();
    dev.faults.failNth(1, { message: 'DMA engine on fire' });
    machine.cpus[0]!.write8(mm, v.start + 5, 42);
    await assert.rejects(drv.flush(), (e: unknown) => e instanceof DeviceError && /DMA engine on fire/.test(e.message));
    assert.equal(dev.sessions()[0]!.bo(bo.id)![5], 0, 'the rejected write was not applied');
    const r = await drv.verifyCoherent(bo);
    assert.deepEqual(r.differing, []);
    assert.equal(dev.sessions()[0]!.bo(bo.id)![5], 42);
  } finally {
    await env.close();
  }
});

test('read coherence: a device write zaps the CPU mappings; the next access waits for the readback and sees it; no CPU write is lost', async () => {
  const env = await online();
  try {
    const { drv, dev, machine, mm } = env;
    const { bo, v } = env.buffer(8);
    await drv.flush(); // the device has the BO
    const [c0, c1] = machine.cpus as [typeof machine.cpus[0], typeof machine.cpus[0]];
    c0.write(mm, v.start + 2 * PS, new Uint8Array(100).fill(7)); // not yet flushed
    dev.sessions()[0]!.gpuWrite(bo.id, [[2 * PS + 200, new Uint8Array(100).fill(9)]]);
    await until(() => drv.conn.seenDeviceWrites === 1, 'the deviceWrite announcement');
    assert.deepEqual(bo.deviceNewer.toArray(), [2]);
    assert.equal(c1.tlb.peek(mm.id, v.start / PS + 2), null);
    const seen = await c1.readAsync(mm, v.start + 2 * PS, 400);
    assert.equal(seen[250], 9, 'the device\'s data');
    assert.equal(seen[50], 7, 'the CPU\'s earlier write survived');
    assert.equal(drv.readbacks, 1);
    assert.equal(c1.counters.faults.missing >= 1, true);
    const r = await drv.verifyCoherent(bo);
    assert.deepEqual([r.differing, r.pendingReadback], [[], []]);
  } finally {
    await env.close();
  }
});

test('reconnect in the middle of a transfer: the flush rejects clearly, the new session is redefined and resynced in full', async () => {
  const env = await online({ bandwidth: 8 << 20 }, { writeback: { windowBatches: 2, maxBatchBytes: 256 << 10 } });
  try {
    const { drv, dev, machine, mm } = env;
    const { bo, v } = env.buffer(512);
    for (let p = 0; p < 512; p++) machine.cpus[p % 2]!.write32(mm, v.start + p * PS, p + 1);
    const sent = drv.conn.bytesSent;
    const pending = drv.flush().then(() => null, (e: unknown) => e);
    await until(() => drv.conn.bytesSent > sent + (256 << 10), 'the transfer to be under way'); // 2 MiB at 8 MiB/s: far from done
    await dev.restart();
    assert.ok((await pending) instanceof DeviceLostError);
    await until(() => drv.conn.sessions === 2, 'the reconnect');
    assert.equal(drv.resyncs, 1);
    const r = await drv.verifyCoherent(bo);
    assert.deepEqual(r.differing, []);
    assert.equal(new DataView(dev.sessions()[0]!.bo(bo.id)!.buffer).getUint32(511 * PS, true), 512);
  } finally {
    await env.close();
  }
});

test('a slow device makes writeback coalesce: many flushes, few rounds, bounded window and staging', async () => {
  const env = await online({ bandwidth: 4 << 20, fenceLatency: 5 }, { writeback: { windowBatches: 1, maxBatchBytes: 64 << 10 } });
  try {
    const { drv, machine, mm } = env;
    const { bo, v } = env.buffer(64);
    const flushes: Array<Promise<unknown>> = [];
    for (let frame = 0; frame < 10; frame++) {
      for (let p = 0; p < 64; p++) machine.cpus[0]!.write8(mm, v.start + p * PS, frame);
      flushes.push(drv.flush());
    }
    await Promise.all(flushes);
    const s = drv.writeback.stats;
    assert.equal(s.flushCalls, 10);
    assert.ok(s.rounds < 10, `rounds ${s.rounds} < flushes`);
    assert.ok(s.payloadBytes < 10 * 64 * PS, `sent ${s.payloadBytes} bytes, less than the ${10 * 64 * PS} dirtied`);
    assert.equal(s.peakInFlight, 1);
    assert.equal(s.stagingBuffers, 1);
    assert.deepEqual((await drv.verifyCoherent(bo)).differing, []);
  } finally {
    await env.close();
  }
});

test('closing cancels cleanly: pending and later flushes settle with typed errors, nothing hangs', async () => {
  const env = await online({ bandwidth: 1 << 20 }, { writeback: { windowBatches: 1, maxBatchBytes: 64 << 10 } });
  const { drv, machine, mm } = env;
  const { v } = env.buffer(64);
  for (let p = 0; p < 64; p++) machine.cpus[0]!.write8(mm, v.start + p * PS, 1);
  const pending = drv.flush().then(() => null, (e: unknown) => e);
  await env.close();
  const outcome = await pending;
  assert.ok(outcome instanceof CancelledError || outcome instanceof DeviceLostError, String(outcome));
  await assert.rejects(drv.flush(), CancelledError);
});

test('readbacks respect the device\'s message limits and survive a failed request: the device\'s bytes are never replaced by stale guest bytes', async () => {
  const env = await online({ limits: { maxMessageSize: 256 << 10 } });
  try {
    const { drv, dev, machine, mm } = env;
    const { bo, v } = env.buffer(128);
    await drv.flush();
    const cpu = machine.cpus[0]!;
    cpu.write8(mm, v.start + 120 * PS, 5); // the CPU's own pending write elsewhere
    const session = dev.sessions()[0]!;
    for (const value of [1, 2, 3]) session.gpuWrite(bo.id, [[0, new Uint8Array(100 * 1024).fill(value)]]);
    session.gpuWrite(bo.id, [[200 * 1024, new Uint8Array(200 * 1024).fill(4)]]); // alone bigger than half the limit
    await until(() => drv.conn.seenDeviceWrites === 4, 'the four announcements');
    dev.faults.failNth(1, { message: 'readback refused once' });
    const first = await cpu.readAsync(mm, v.start, 1);
    assert.equal(first[0], 3, 'the device\'s last write');
    assert.equal((await cpu.readAsync(mm, v.start + 399 * 1024, 1))[0], 4);
    await drv.flush();
    const r = await drv.verifyCoherent(bo);
    assert.deepEqual([r.differing, r.pendingReadback], [[], []]);
    const device = session.bo(bo.id)!;
    assert.deepEqual([device[0], device[200 * 1024], device[120 * PS]], [3, 4, 5]);
  } finally {
    await env.close();
  }
});

test('a user munmap of a PAGETABLE-tracked BO harvests its dirty bits before the zap', async () => {
  const env = await online();
  try {
    const { drv, machine, mm } = env;
    const { bo, v } = env.buffer(8);
    assert.equal(bo.tracker!.method, 'pagetable');
    machine.cpus[0]!.write8(mm, v.start + 3 * PS, 9);
    mm.munmap(v.start, 8 * PS);
    const r = await drv.verifyCoherent(bo);
    assert.deepEqual(r.differing, []);
  } finally {
    await env.close();
  }
});

test('destroying a BO while a round is sending drops its pending uploads and loses none of another BO\'s', async () => {
  const env = await online({ bandwidth: 4 << 20 }, { writeback: { windowBatches: 1, maxBatchBytes: 64 << 10 } });
  try {
    const { drv, machine, mm } = env;
    const a = drv.createBo(64 * PS);
    drv.createBufferResource(a);
    const b = drv.createBo(64 * PS);
    drv.createBufferResource(b);
    const va = drv.mmap(mm, a);
    const vb = drv.mmap(mm, b);
    for (let p = 0; p < 64; p++) {
      machine.cpus[0]!.write8(mm, va.start + p * PS, 1);
      machine.cpus[1]!.write8(mm, vb.start + p * PS, 2);
    }
    const sent = drv.conn.bytesSent;
    const pending = drv.flush().then(() => 'ok', (e: Error) => e.message);
    await until(() => drv.conn.bytesSent > sent + (64 << 10), 'the round to be sending'); // 512 KiB at 4 MiB/s, window 1
    drv.destroyBo(a);
    assert.equal(await pending, 'ok');
    assert.deepEqual((await drv.verifyCoherent(b)).differing, []);
  } finally {
    await env.close();
  }
});

test('DMA frames never carry more entries than the device\'s maxRanges', async () => {
  const env = await online({ limits: { maxRanges: 64 } });
  try {
    const { drv, machine, mm } = env;
    const { bo, v } = env.buffer(400);
    for (let p = 0; p < 400; p += 2) machine.cpus[0]!.write8(mm, v.start + p * PS, 1); // 200 separate runs
    const r = await drv.flush();
    assert.ok(r.batches >= 4, `${r.batches} batches`);
    assert.deepEqual((await drv.verifyCoherent(bo)).differing, []);
  } finally {
    await env.close();
  }
});

test('without a device session, creating objects fails with a typed error and changes nothing', async () => {
  const env = await online({}, { reconnect: false });
  const { drv, dev } = env;
  await dev.close();
  await until(() => !drv.conn.isOpen, 'the session to end');
  assert.throws(() => drv.createBo(4 * PS), DeviceLostError);
  assert.equal(drv.space.all.length, 0);
  await drv.close();
});

test('an upload read before a GPU write was announced does not overwrite it on the device (seen)', async () => {
  const env = await online({ bandwidth: 2 << 20 });
  try {
    const { drv, dev, machine, mm } = env;
    const { bo, v } = env.buffer(64);
    await drv.flush();
    const cpu = machine.cpus[0]!;
    for (let p = 0; p < 64; p++) cpu.write8(mm, v.start + p * PS, 7); // 256 KiB to upload: ~125 ms on this link
    const sent = drv.conn.bytesSent;
    const flushing = drv.flush();
    await until(() => drv.conn.bytesSent >= sent + 64 * PS, 'the upload to be sent'); // read and on the wire, not applied
    dev.sessions()[0]!.gpuWrite(bo.id, [[2 * PS + 200, new Uint8Array([9])]]);
    await flushing;
    await drv.flush();
    const device = dev.sessions()[0]!.bo(bo.id)!;
    assert.deepEqual([device[2 * PS], device[2 * PS + 200]], [7, 9], 'both writes on the device');
    assert.deepEqual([...(await cpu.readAsync(mm, v.start + 2 * PS, 201))].filter((_, i) => i === 0 || i === 200), [7, 9], 'and in guest memory');
    assert.deepEqual((await drv.verifyCoherent(bo)).differing, []);
  } finally {
    await env.close();
  }
});

test('periodic mode flushes on its own every N ms until stopped', async () => {
  const env = await online();
  try {
    const { drv, machine, mm } = env;
    const { bo, v } = env.buffer(8);
    const results: number[] = [];
    drv.writeback.startPeriodic(5, (r) => results.push(r.pagesTransferred));
    machine.cpus[0]!.write8(mm, v.start + 3 * PS, 1);
    await until(() => results.some((n) => n > 0), 'a periodic round carrying the page');
    drv.writeback.stopPeriodic();
    assert.ok(results.some((n) => n === 1), `a periodic round carried the page: ${results}`);
    assert.equal(dev(env).bo(bo.id)![3 * PS], 1);
    const calls = drv.writeback.stats.flushCalls;
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(drv.writeback.stats.flushCalls, calls, 'no flush starts after stop (one in flight may still finish)');
  } finally {
    await env.close();
  }
});

function dev(env: Awaited<ReturnType<typeof online>>) {
  return env.dev.sessions()[0]!;
}

test('destroying a BO unmaps only its own pages, also from a mapping that spans its neighbour', async () => {
  const env = await online();
  try {
    const { drv, machine, mm } = env;
    const { bo: a } = env.buffer(4);
    const { bo: b } = env.buffer(4);
    assert.equal(b.offset, a.offset + 4);
    const start = mm.mmap(drv.space.mapping, { pgoff: a.offset, pages: 8 }).start; // both BOs in one VMA
    machine.cpus[0]!.write8(mm, start + 5 * PS, 7); // BO b, page 1
    drv.destroyBo(a);
    assert.equal(machine.cpus[0]!.read8(mm, start + 5 * PS), 7, 'b is still mapped');
    assert.throws(() => machine.cpus[0]!.read8(mm, start), /no mapping/);
    assert.deepEqual((await drv.verifyCoherent(b)).differing, []);
  } finally {
    await env.close();
  }
});

test('a fence the device never signals is settled by the next one (fences signal in order)', async () => {
  const env = await online();
  try {
    const { drv } = env;
    const [lost, never] = drv.conn.expectFence(); // registered, but its frame is never sent
    const outcome = never.then(() => 'signalled', (e: Error) => e.message);
    await drv.flush(); // a later fence
    assert.match(await outcome, new RegExp(`fence ${lost} was never signalled`));
  } finally {
    await env.close();
  }
});

test('a batch carries its fence when the device announces fencedWrite, and is followed by a separate fence otherwise', async () => {
  const env = await online({ record: true });
  try {
    const { drv, dev, machine, mm } = env;
    const { bo, v } = env.buffer(4);
    const lastOps = () => dev.log.map((e) => decodeDriverFrame(e.frame))
      .map((m) => (m instanceof ProtocolError ? 'bad' : m.op === 'write' || m.op === 'writeSpans' ? `dma${'fence' in m ? '+fence' : ''}` : m.op)).slice(-2);
    machine.cpus[0]!.write8(mm, v.start + PS, 2);
    await drv.flush();
    assert.equal(lastOps()[1], 'dma+fence');
    drv.conn.welcome!.features = drv.conn.welcome!.features.filter((f) => f !== 'fencedWrite');
    machine.cpus[0]!.write8(mm, v.start + PS, 3);
    await drv.flush();
    assert.deepEqual(lastOps(), ['dma', 'fence']);
    assert.deepEqual((await drv.verifyCoherent(bo)).differing, []);
  } finally {
    await env.close();
  }
});
