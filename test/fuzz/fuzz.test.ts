import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startDevice } from '../../device/index.js';
import { ProtocolError, type Welcome } from '../../protocol/index.js';
import { SessionFrames } from '../../src/fuzz/generate.js';
import { Rng } from '../../src/fuzz/rng.js';
import { startBrokenDevice } from '../conformance/broken-device.js';
import { runCli, runScript, type CliRun } from '../conformance/run-cli.js';

const FUZZ = 'dist/src/fuzz/main.js';
const dir = mkdtempSync(join(tmpdir(), 'vgpu-dirty-fuzz-'));

function fuzz(args: string[], timeoutMs = 90_000): Promise<CliRun> {
  return runScript(FUZZ, args, timeoutMs);
}

const WELCOME = { maxBoSize: 65536, maxMessageSize: 262144, maxRanges: 256, pageSize: 4096 } as Welcome;

describe('fuzzer', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('generates the same frames from the same seed and connection, others from others', () => {
    const frames = (seed: number, conn: number): string[] => {
      const g = new SessionFrames(new Rng(seed, conn), WELCOME);
      return Array.from({ length: 200 }, () => {
        const f = g.next();
        return typeof f.data === 'string' ? f.data : Buffer.from(f.data).toString('hex');
      });
    };
    assert.deepEqual(frames(7, 3), frames(7, 3));
    assert.notDeepEqual(frames(7, 3), frames(7, 4));
    assert.notDeepEqual(frames(7, 3), frames(8, 3));
  });

  it('mixes valid commands, bad messages and malformed frames', async () => {
    const { decodeDriverFrame } = await import('../../protocol/index.js');
    const g = new SessionFrames(new Rng(1, 1), WELCOME);
    const kinds = { valid: 0, bad: 0, malformed: 0, text: 0 };
    for (let i = 0; i < 2000; i++) {
      const f = g.next();
      if (typeof f.data === 'string') kinds.text++;
      else {
        const m = decodeDriverFrame(f.data);
        if (!(m instanceof ProtocolError)) kinds.valid++;
        else if (m.code === 'malformed') kinds.malformed++;
        else kinds.bad++;
      }
    }
    assert.ok(kinds.valid > 1000 && kinds.bad > 100 && kinds.malformed > 20 && kinds.text > 0, JSON.stringify(kinds));
  });

  it('runs a seeded campaign against the device: no crash, no 1011, bounded RSS', async () => {
    const r = await fuzz(['--seed', '7', '--frames', '4000', '--seconds', '60']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^fuzz: seed 7 /);
    assert.match(r.stdout, /^frames \d+ in [\d.]+ s/m);
    assert.match(r.stdout, /^crashes 0, 1011 0$/m);
    assert.match(r.stdout, /^device RSS: before [\d.]+ MiB, peak [\d.]+ MiB, after [\d.]+ MiB$/m);
    assert.match(r.stdout, /^result: no finding$/m);
  });

  it('finds a device that closes with 1011, saves the case, and replay reproduces it', async () => {
    const device = await startDevice({ token: 't', controlToken: 'c', limits: { maxBoSize: 65536, maxMessageSize: 262144 } });
    const broken = await startBrokenDevice(device.url, {
      fromClient(frame, msg, link) {
        if (!(msg instanceof ProtocolError) && msg.op === 'write' && msg.bo === 3 && msg.ranges.length > 1) link.closeClient(1011, 'internal error');
        else link.toDevice(frame);
      },
    });
    try {
      const out = join(dir, 'failures');
      const r = await fuzz(['--device', broken.url, '--token', 't', '--control-token', 'c', '--seed', '3', '--seconds', '60', '--out', out, '--workers', '2']);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /^FAILURE \(1011\) on connection \d+: the device closed with 1011 'internal error'$/m);
      const [file] = readdirSync(out);
      assert.match(file!, /^seed-3-conn-\d+\.vgpulog$/);
      assert.match(r.stdout, new RegExp(`^recording: .*${file!.replace('.', '\\.')} \\(\\d+ frames`, 'm'));
      const again = await runCli(['replay', join(out, file!), '--device', broken.url]);
      assert.equal(again.code, 1, again.stdout + again.stderr);
      assert.match(again.stdout, /closed 1011 'internal error'$/m);
      const healthy = await runCli(['replay', join(out, file!), '--device', device.url]);
      assert.equal(healthy.code, 0, 'the real device behind the proxy handles the same frames');
    } finally {
      await broken.close();
      await device.close();
    }
  });

  it('exits 2 on bad arguments', async () => {
    for (const args of [['--seconds', '0'], ['--bogus'], ['--device', 'http://x'], ['--seed', '-1']]) {
      const r = await fuzz(args, 10_000);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    }
  });
});
