// Issue 10's device defects, one test each. Most are conformance cases (they drive the device
// over the wire like any client); the rest need the in-process view of the device.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { resolveOptions, startDevice, type Device, type DeviceOptions } from '../../device/index.js';
import { runConformance, WireClient } from '../../src/conformance/index.js';
import { pingFrames, socketOf } from '../../src/conformance/raw-frames.js';
import { CONTROL_TOKEN, SMALL_DEVICE, TOKEN } from '../conformance/devices.js';

/** Runs the conformance cases whose ids start with `prefixes`; every one must pass. */
async function passes(options: DeviceOptions, prefixes: string[]): Promise<void> {
  const device = await startDevice(options);
  try {
    const r = await runConformance({ url: device.url, token: TOKEN, controlToken: CONTROL_TOKEN, only: prefixes });
    for (const p of prefixes) assert.ok(r.results.some((x) => x.id.startsWith(p)), `no case ${p}`);
    assert.deepEqual(r.results.filter((x) => x.status !== 'PASS').map((x) => `${x.status} ${x.id}: ${x.detail}`), []);
  } finally {
    await device.close();
  }
}

describe('issue 10: device hardening', () => {
  it('1. a client that sends and never reads is stopped being read (pings and readbacks)', () =>
    passes(SMALL_DEVICE, ['bp.unread-pongs', 'bp.unread-replies']));

  describe('1. bounded output, in process', () => {
    let device: Device;
    before(async () => {
      device = await startDevice({ controlToken: CONTROL_TOKEN, highWaterMark: 64 * 1024 });
      // (WebSocket-level pings need nothing here: ws cuts a client with 60 unsent auto-pongs.)
    });
    after(() => device.close());

    it('refuses a control gpuWrite into a session that does not read, instead of buffering it', async () => {
      const a = await WireClient.session(device.url);
      const ctl = await WireClient.session(device.url, { role: 'control', token: CONTROL_TOKEN });
      try {
        a.cmd({ op: 'defineBo', bo: 1, size: 16 * 1024 });
        await a.fence();
        a.pauseReading();
        const data = new Uint8Array(16 * 1024);
        let refused: string | undefined;
        for (let i = 0; i < 4096 && refused === undefined; i++) {
          ctl.cmd({ op: 'gpuWrite', bo: 1, session: a.welcome!.session, ranges: [[0, data]] });
          ctl.cmd({ op: 'fence', fence: i });
          const m = await ctl.next();
          if (m.op === 'error') refused = `${m.code}: ${m.message}`;
        }
        assert.match(refused ?? 'never refused (64 MiB announced to a client that reads nothing)', /^limit: session \d+ is not reading/);
      } finally {
        a.terminate();
        ctl.terminate();
      }
    });
  });

  it('2. seen protection dies with its BO (no 1011, no bytes silently kept)', () => passes(SMALL_DEVICE, ['seen.destroyed-']));

  it('3. caps: connections, idle sessions, and each session\'s share of BOs, bytes and surfaces', () =>
    passes(SMALL_DEVICE, ['lim.sessions', 'lim.idle', 'lim.session-']));

  it('3. the HTTP server caps raw TCP connections and times out incomplete upgrades', async () => {
    const device = await startDevice({ helloTimeout: 2000, limits: { maxSessions: 2 } });
    try {
      const { createConnection } = await import('node:net');
      const port = Number(new URL(device.url).port);
      const sockets = Array.from({ length: 40 }, () => createConnection({ host: '127.0.0.1', port }));
      const ended = await Promise.all(sockets.map((s) => new Promise<number>((resolve) => {
        const t0 = performance.now();
        s.on('error', () => {});
        s.on('close', () => resolve(performance.now() - t0));
        s.write('GET / HTTP/1.1\r\nHost: x\r\n'); // never finishes its headers
      })));
      // maxSessions 2 plus 16 connections of slack are kept until the hello timeout ends them.
      assert.ok(ended.every((ms) => ms < 6000), `raw connections lived ${Math.max(...ended).toFixed(0)} ms`);
      const dropped = ended.filter((ms) => ms < 1000).length;
      assert.equal(dropped, 40 - (2 + 16), `connections dropped at once (lifetimes ${ended.map((ms) => ms.toFixed(0)).join(' ')})`);
    } finally {
      await device.close();
    }
  });

  it('3. a client that never answers the close frame loses its socket soon after, not after ws\'s 30 s', async () => {
    const device = await startDevice({ helloTimeout: 200 });
    try {
      const { createConnection } = await import('node:net');
      const s = createConnection({ host: '127.0.0.1', port: Number(new URL(device.url).port) });
      s.on('error', () => {});
      s.resume();
      const t0 = performance.now();
      s.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
      const closedAfter = await new Promise<number>((resolve) => s.on('close', () => resolve(performance.now() - t0)));
      assert.ok(closedAfter < 3000, `socket lived ${closedAfter.toFixed(0)} ms after the hello timeout of 200 ms`);
    } finally {
      await device.close();
    }
  });

  it('4. MessagePack strictness matches §2: malformed vs bad_message, a depth limit, no extension types', () => passes(SMALL_DEVICE, ['enc.']));

  it('5. control sessions need the control token; the token is checked before anything else', () =>
    passes(SMALL_DEVICE, ['hs.control', 'hs.token-']));

  it('5. the control token must differ from the driver token; without one no control session is accepted', () => {
    assert.throws(() => resolveOptions({ token: 'same', controlToken: 'same' }), /controlToken must differ from token/);
    assert.throws(() => resolveOptions({ controlToken: '' }), /controlToken must be a non-empty string/);
    assert.deepEqual(resolveOptions({}).controlToken, undefined);
  });

  it('6. a rejected fence-carrying frame still signals its fence when seq and fence are readable', () =>
    passes(SMALL_DEVICE, ['fence.in-write-bad-message', 'fence.bad-fence-frame', 'fence.unreadable-seq']));

  it('spec gaps: first seq 0, unreadable seq before unknown op, feature contract, stats counting', async () => {
    await passes(SMALL_DEVICE, ['seq.first-zero', 'seq.unknown-op-unreadable-seq', 'seq.op-not-str', 'stats.counters', 'err.check-order']);
    await passes({ ...SMALL_DEVICE, features: ['stats'] }, ['feat.unannounced']);
  });
});

describe('issue 10, defect 1: what a flood of tiny replies costs is bounded', () => {
  it('charges each unsent message beyond its bytes, so a ping flood stops being read early', async () => {
    const device = await startDevice({ highWaterMark: 1024 * 1024 });
    const c = await WireClient.session(device.url);
    try {
      c.pauseReading();
      // Pre-framed pings written straight to the socket: a million in a second.
      const sock = socketOf(c);
      for (let seq = 1; seq <= 1_000_000 && sock.writableLength < 8 << 20; seq += 4096) {
        sock.write(pingFrames(seq, 4096));
        await new Promise((r) => setImmediate(r));
      }
      await new Promise((r) => setTimeout(r, 300));
      const { maxUnsent, pauses } = device.session(c.welcome!.session)!.counters;
      assert.ok(pauses >= 1, 'never paused');
      // 1 MiB / (16 + 256) bytes per pong, plus the pongs of one socket read after the pause.
      assert.ok(maxUnsent < 12_000, `${maxUnsent} pongs waited for the socket at once`);
    } finally {
      c.terminate();
      await device.close();
    }
  });
});
