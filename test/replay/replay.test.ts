import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readLog, startDevice, writeLog } from '../../device/index.js';
import { Encoder, ProtocolError } from '../../protocol/index.js';
import { WireClient } from '../../src/conformance/index.js';
import { BARRIER_SEQ, LAST_PING_SEQ, replay } from '../../src/replay/replay.js';
import { startBrokenDevice } from '../conformance/broken-device.js';
import { runCli } from '../conformance/run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'vgpu-dirty-replay-'));
const enc = new Encoder();

describe('replay', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('re-sends a device recording and gets the same replies, in order, per session', async () => {
    const file = join(dir, 'session.vgpulog');
    const device = await startDevice({ logFile: file, controlToken: 'ctl' });
    const a = await WireClient.session(device.url, { name: 'a' });
    const ctl = await WireClient.session(device.url, { role: 'control', token: 'ctl' });
    let originals: { a: unknown[]; ctl: unknown[] };
    try {
      a.cmd({ op: 'defineBo', bo: 1, size: 64 });
      a.cmd({ op: 'write', bo: 1, ranges: [[60, new Uint8Array(8)]] });
      a.cmd({ op: 'readback', bo: 1, ranges: [[0, 4]] });
      a.cmd({ op: 'fence', fence: 1 });
      for (const op of ['error', 'readbackData', 'signaled'] as const) await a.expect(op);
      ctl.cmd({ op: 'gpuWrite', bo: 1, session: a.welcome!.session, ranges: [[0, Uint8Array.of(1, 2)]] });
      await ctl.fence();
      await a.expect('deviceWrite');
      originals = { a: [...a.received], ctl: [...ctl.received] };
    } finally {
      await a.close();
      await ctl.close();
      await device.close();
    }

    const r = await replay(readLog(readFileSync(file)));
    assert.equal(r.inProcess, true);
    assert.deepEqual(r.sessions.map((s) => s.recorded), [a.welcome!.session, ctl.welcome!.session]);
    const [ra, rc] = r.sessions;
    const withoutIds = (ms: unknown[]): unknown[] => ms.map((m) => (m as { op: string }).op === 'welcome' ? { ...(m as object), session: 0 } : m);
    // The barrier's signal follows the session's own replies (a deviceWrite another session
    // caused may come after it); the last ping's pong follows everything.
    const isBarrier = (m: unknown): boolean => (m as { seq?: number }).seq === BARRIER_SEQ;
    for (const [replayed, original] of [[ra!, originals!.a], [rc!, originals!.ctl]] as const) {
      assert.deepEqual(replayed.replies.filter(isBarrier), [{ op: 'signaled', seq: BARRIER_SEQ, fence: BARRIER_SEQ, ok: true }]);
      assert.deepEqual(withoutIds(replayed.replies.filter((m) => !isBarrier(m))), [...withoutIds(original), { op: 'pong', seq: LAST_PING_SEQ }]);
    }
    const gpuWrite = rc!.sent.find((f) => !(f.msg instanceof ProtocolError) && f.msg.op === 'gpuWrite')!;
    assert.equal(gpuWrite.rewritten, `session ${a.welcome!.session} → ${ra!.session}`);
    assert.deepEqual([ra!.barrier, ra!.closed, rc!.closed], [true, undefined, undefined]);

    const cli = await runCli(['replay', file]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /^replay of .*: 2 session\(s\), 8 frame\(s\) → ws:\/\/127\.0\.0\.1:\d+ \(in-process device\)$/m);
    assert.match(cli.stdout, /← \{"op":"error","code":"out_of_range","message":"range 0 \[60, 68\) outside BO of 64 bytes","seq":2\}/);
    assert.match(cli.stdout, /← \(replay barrier\) \{"op":"signaled","seq":9007199254740990/);
    assert.match(cli.stdout, /← \(replay barrier\) \{"op":"pong","seq":9007199254740991\}/);
  });

  it('reproduces a device that closes with 1011, and says so with exit 1', async () => {
    const device = await startDevice();
    // A broken device: a write to BO 13 makes it fail as if it hit an internal error.
    const broken = await startBrokenDevice(device.url, {
      fromClient(frame, msg, link) {
        if (!(msg instanceof ProtocolError) && msg.op === 'write' && msg.bo === 13) link.closeClient(1011, 'internal error');
        else link.toDevice(frame);
      },
    });
    const file = join(dir, 'crash.vgpulog');
    const frames = [
      { op: 'hello', min: 1, max: 1 },
      { op: 'defineBo', seq: 1, bo: 13, size: 8 },
      { op: 'write', seq: 2, bo: 13, ranges: [[0, Uint8Array.of(1)]] },
      { op: 'fence', seq: 3, fence: 1 },
    ];
    writeFileSync(file, writeLog(frames.map((f, i) => ({ session: 5, time: i, frame: enc.encode(f as never) }))));
    try {
      const r = await replay(readLog(readFileSync(file)), { url: broken.url });
      assert.deepEqual(r.sessions[0]!.closed, { code: 1011, reason: 'internal error' });
      const cli = await runCli(['replay', file, '--device', broken.url]);
      assert.equal(cli.code, 1, cli.stderr);
      assert.match(cli.stdout, /closed 1011 'internal error'$/m);
      const healthy = await runCli(['replay', file]);
      assert.equal(healthy.code, 0, 'the reference device does not crash on it');
    } finally {
      await broken.close();
      await device.close();
    }
  });

  it('exits 2 on a missing or unreadable recording, or a bad device URL', async () => {
    const junk = join(dir, 'junk');
    writeFileSync(junk, 'not a log');
    for (const args of [['replay'], ['replay', join(dir, 'missing')], ['replay', junk], ['replay', junk, '--device', 'http://x']]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    }
    const help = await runCli(['replay', '--help']);
    assert.match(help.stdout, /^Usage: vgpu-dirty replay <recording>/);
  });
});
