import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { FrameReclaimer } from '../../device/reclaim.js';

test('received frames are freed after every threshold of bytes, not when V8 gets round to it', async () => {
  const r = new FrameReclaimer(1 << 20);
  r.onReceived(2 << 20); // exposes gc and runs it once: a clean start
  await sleep(20);
  const before = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < 32; i++) Buffer.allocUnsafe(1 << 20).fill(i); // 32 dead 1 MiB "frames"
  const piled = process.memoryUsage().arrayBuffers;
  assert.ok(piled - before >= 24 << 20, `dead buffers pile up without a GC (${(piled - before) >> 20} MiB)`);
  r.onReceived(512 << 10);
  assert.ok(process.memoryUsage().arrayBuffers >= piled - (1 << 20), 'below the threshold nothing is collected');
  r.onReceived(512 << 10);
  let after = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < 50 && after - before > 8 << 20; i++) {
    await sleep(10); // the sweeper may free the memory just after the GC
    after = process.memoryUsage().arrayBuffers;
  }
  assert.ok(after - before < 8 << 20, `freed: ${(after - before) >> 20} MiB left of ${(piled - before) >> 20}`);
});
