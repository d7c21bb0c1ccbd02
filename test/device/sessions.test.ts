// The in-process view of the device (sessions, BOs, surfaces, device-side writes) and what it
// announces; the wire behaviour is the conformance suite's (test/conformance).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDevice, type Device } from '../../device/index.js';
import { SessionIds } from '../../device/session-ids.js';
import { DEFAULT_LIMITS, FEATURES } from '../../protocol/index.js';
import { WireClient } from '../../src/conformance/index.js';

describe('sessions in process', () => {
  let device: Device;
  before(async () => {
    device = await startDevice({ controlToken: 'ctl', pageSize: 8192, idleTimeout: 0 });
  });
  after(() => device.close());

  it('welcome carries the configured page size, features, limits, shares and idle timeout', async () => {
    const c = await WireClient.session(device.url, { name: 'w1', max: 9 });
    try {
      assert.deepEqual(c.welcome, {
        op: 'welcome', version: 1, session: c.welcome!.session, pageSize: 8192, features: [...FEATURES, 'control'], ...DEFAULT_LIMITS,
        maxSessions: 64, maxSessionBos: 1024, maxSessionBytes: 256 * 1024 * 1024, maxSessionSurfaces: 1024, idleTimeout: 0,
      });
      const view = device.session(c.welcome!.session)!;
      assert.deepEqual([view.name, view.role], ['w1', 'driver']);
    } finally {
      await c.close();
    }
  });

  it('shows BOs, surfaces and counters, and writes as the GPU would', async () => {
    const c = await WireClient.session(device.url);
    try {
      c.cmd({ op: 'defineBo', bo: 2, size: 200 });
      c.cmd({ op: 'write', bo: 2, ranges: [[0, Uint8Array.of(1, 2, 3)]] });
      c.cmd({ op: 'defineSurface', sid: 5, bo: 2, offset: 100, width: 4, height: 3, depth: 2, bytesPerPixel: 2, rowPitch: 12, imagePitch: 40 });
      assert.equal((await c.fence()).ok, true);
      const view = device.session(c.welcome!.session)!;
      assert.deepEqual(view.boIds(), [2]);
      assert.deepEqual([...view.bo(2)!.subarray(0, 4)], [1, 2, 3, 0]);
      assert.deepEqual(view.surfaces(), [{ sid: 5, bo: 2, offset: 100, width: 4, height: 3, depth: 2, bytesPerPixel: 2, rowPitch: 12, imagePitch: 40 }]);
      assert.deepEqual([view.counters.commands, view.counters.failed, view.counters.fences], [3, 0, 1]);
      view.gpuWrite(2, [[0, Uint8Array.of(7)], [199, Uint8Array.of(8)]]);
      assert.deepEqual(await c.next(), { op: 'deviceWrite', bo: 2, ranges: [[0, Buffer.of(7)], [199, Buffer.of(8)]] });
      assert.deepEqual([view.bo(2)![0], view.bo(2)![199]], [7, 8]);
      assert.throws(() => view.gpuWrite(2, [[200, Uint8Array.of(1)]]), { code: 'out_of_range' });
    } finally {
      await c.close();
    }
  });

  it('forgets a session when it closes', async () => {
    const a = await WireClient.session(device.url);
    const id = a.welcome!.session;
    assert.ok(device.session(id));
    await a.close();
    for (let i = 0; i < 50 && device.session(id) !== undefined; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(device.session(id), undefined);
  });

  it('closes with 1012 restart: … on restart and 1001 shutdown: … on close', async () => {
    const other = await startDevice();
    const a = await WireClient.session(other.url);
    await other.restart();
    assert.deepEqual(await a.waitClosed(), { code: 1012, reason: 'restart: device restarted, all state is lost; reconnect and resync' });
    const b = await WireClient.session(other.url);
    await other.close();
    assert.deepEqual(await b.waitClosed(), { code: 1001, reason: 'shutdown: device shutting down' });
  });
});

describe('session ids', () => {
  it('are unique, never 0, and not sequential', () => {
    const ids = new SessionIds();
    const seen = new Set<number>();
    let steps = 0;
    let prev = ids.next();
    seen.add(prev);
    for (let i = 0; i < 100_000; i++) {
      const id = ids.next();
      assert.ok(id !== 0 && id <= 0xffff_ffff);
      if (Math.abs(id - prev) === 1) steps++;
      seen.add(id);
      prev = id;
    }
    assert.equal(seen.size, 100_001);
    assert.ok(steps < 10, `${steps} consecutive ids differ by one`);
  });

  it('differ between devices (random keys) and repeat for the same keys', () => {
    const keys = Uint32Array.of(1, 2, 3, 4);
    const a = new SessionIds(keys);
    const b = new SessionIds(keys);
    assert.deepEqual([a.next(), a.next(), a.next()], [b.next(), b.next(), b.next()]);
    assert.notDeepEqual([new SessionIds().next(), new SessionIds().next()], [new SessionIds().next(), new SessionIds().next()]);
  });
});
