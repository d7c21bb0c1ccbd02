import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decode } from '@msgpack/msgpack';
import { readLog, startDevice, type Device } from '../../device/index.js';
import { WireClient } from '../../src/conformance/index.js';

describe('recording', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-dirty-log-'));
  const file = join(dir, 'device.log');
  let device: Device;
  const sent: unknown[] = [
    { op: 'hello', min: 1, max: 1, name: 'rec' },
    { op: 'defineBo', seq: 1, bo: 3, size: 64 },
    { op: 'write', seq: 2, bo: 3, ranges: [[8, Buffer.of(1, 2, 3)]] },
    { op: 'fence', seq: 3, fence: 1 },
  ];
  let session = 0;

  before(async () => {
    device = await startDevice({ record: true, logFile: file });
    const c = await WireClient.open(device.url);
    for (const m of sent) c.send(m as object);
    session = (await c.expect('welcome')).session;
    await c.expect('signaled');
    c.ws.send(Buffer.from([0xc1])); // malformed frames are recorded too
    await c.waitClosed();
    await device.close(); // flushes and closes the log file
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps every received frame in memory, decodable by an independent MessagePack implementation', () => {
    assert.equal(device.log.length, sent.length + 1);
    assert.deepEqual(device.log.slice(0, sent.length).map((e) => decode(e.frame)), sent);
    assert.deepEqual([...device.log[sent.length]!.frame], [0xc1]);
    for (const e of device.log) assert.equal(e.session, session);
    const times = device.log.map((e) => e.time);
    assert.deepEqual([...times].sort((x, y) => x - y), times);
  });

  it('writes the same frames to the log file in the documented format', () => {
    const bytes = readFileSync(file);
    assert.equal(bytes.toString('latin1', 0, 8), 'VGPULOG1');
    const entries = readLog(bytes);
    assert.deepEqual(entries.map((e) => [e.session, Buffer.from(e.frame)]), device.log.map((e) => [e.session, Buffer.from(e.frame)]));
    assert.deepEqual(entries.map((e) => e.time), device.log.map((e) => e.time));
  });

  it('refuses a bad magic or a truncated log', () => {
    const bytes = readFileSync(file);
    assert.throws(() => readLog(Buffer.from('NOTALOG!')), /not a VGPULOG1 log/);
    assert.throws(() => readLog(bytes.subarray(0, bytes.length - 1)), /truncated record at byte/);
    assert.throws(() => readLog(bytes.subarray(0, 8 + 10)), /truncated record header at byte 8/);
  });
});
