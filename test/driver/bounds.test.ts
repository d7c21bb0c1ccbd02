// Nothing hangs: connect, fences and replies have bounds, and no timer keeps the process alive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { spawnSync } from 'node:child_process';
import { startDevice } from '../../device/index.js';
import { ConnectTimeoutError, DeviceLostError, DeviceRefusedError, Driver, Machine } from '../../src/index.js';
import { online, PS, until } from './fixtures.js';

/** A loopback URL nothing listens on. */
async function deadUrl(): Promise<string> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return `ws://127.0.0.1:${port}`;
}

const machine = () => new Machine({ cpus: 2, memoryBytes: 8 << 20 });

test('connect to an unreachable device rejects with ConnectTimeoutError within its timeout, or after its attempts', async () => {
  const url = await deadUrl();
  let t0 = performance.now();
  await assert.rejects(Driver.connect({ machine: machine(), url, connect: { timeoutMs: 300 } }), (e: unknown) =>
    e instanceof ConnectTimeoutError && /within 300 ms/.test(e.message) && /ECONNREFUSED/.test(e.message));
  const waited = performance.now() - t0;
  assert.ok(waited >= 290 && waited < 2000, `settled after ${waited} ms`);
  t0 = performance.now();
  await assert.rejects(Driver.connect({ machine: machine(), url, connect: { attempts: 2, timeoutMs: 60_000 } }), (e: unknown) =>
    e instanceof ConnectTimeoutError && /after 2 attempts/.test(e.message));
  assert.ok(performance.now() - t0 < 5000);
});

test('connect honours an AbortSignal', async () => {
  const url = await deadUrl();
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error('user gave up')), 50);
  await assert.rejects(Driver.connect({ machine: machine(), url, connect: { signal: ac.signal } }), /user gave up/);
});

test('a wrong token is a permanent refusal: connect rejects at once and never tries again', async () => {
  const lines: string[] = [];
  const dev = await startDevice({ port: 0, token: 'right', log: (l) => lines.push(l) });
  try {
    const t0 = performance.now();
    await assert.rejects(Driver.connect({ machine: machine(), url: dev.url, token: 'wrong' }), (e: unknown) =>
      e instanceof DeviceRefusedError && e.reason === 'bad_token');
    assert.ok(performance.now() - t0 < 2000);
    await new Promise((r) => setTimeout(r, 300)); // a retry would have come by now (backoff starts at 50 ms)
    assert.equal(lines.filter((l) => /connected/.test(l)).length, 1, lines.join('\n'));
  } finally {
    await dev.close();
  }
});

test('a device that stops signalling fences is dropped after fenceTimeoutMs: the flush rejects, the driver reconnects and resyncs', async () => {
  const env = await online({}, { fenceTimeoutMs: 200 });
  try {
    const { drv, dev, machine: m, mm } = env;
    const { bo, v } = env.buffer(4);
    await drv.flush();
    dev.faults.stall({ session: drv.conn.welcome!.session });
    m.cpus[0]!.write8(mm, v.start + 3, 1);
    const t0 = performance.now();
    await assert.rejects(drv.flush(), (e: unknown) => e instanceof DeviceLostError && /not signalled within 200 ms/.test(e.message));
    assert.ok(performance.now() - t0 < 2000);
    await until(() => drv.conn.sessions === 2, 'the reconnect');
    assert.deepEqual((await drv.verifyCoherent(bo)).differing, []);
    assert.equal(dev.sessions().at(-1)!.bo(bo.id)![3], 1);
    dev.faults.release();
  } finally {
    await env.close();
  }
});

test('a driver never closed does not keep the process alive once its device is gone', () => {
  const script = `
    import { startDevice } from './dist/device/index.js';
    import { Driver, Machine } from './dist/src/index.js';
    const dev = await startDevice({ port: 0 });
    const drv = await Driver.connect({ machine: new Machine({ cpus: 1, memoryBytes: 4 << 20 }), url: dev.url });
    drv.createBo(${PS});
    await drv.flush();
    await dev.close(); // and drv.close() is forgotten
    console.log('done');
  `;
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 15_000 });
  assert.equal(r.signal, null, `still running after 15 s: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'done');
  assert.ok(performance.now() - t0 < 10_000);
});
