// The driver follows the feature contract (docs/protocol.md §6.2): no optional op or field the
// device did not announce, and the same coherence without them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeDriverFrame, ProtocolError } from '../../protocol/index.js';
import { online, PS } from './fixtures.js';

for (const features of [['fencedWrite'], []] as const) {
  test(`a device offering only [${features.join(', ')}]: surfaces go as plain writes, coherence is checked by readback, no seen, no unannounced op`, async () => {
    const env = await online({ features: [...features], record: true });
    try {
      const { drv, dev, machine, mm } = env;
      const fb = drv.createBo(8 * PS);
      drv.createSurface(fb, 0, { width: 64, height: 100, depth: 1, bytesPerPixel: 4, rowPitch: 320 });
      const v = drv.mmap(mm, fb);
      for (let y = 0; y < 100; y += 7) machine.cpus[y % 2]!.write(mm, v.start + y * 320 + 16, new Uint8Array(40).fill(y + 1));
      await drv.flush();
      const r = await drv.verifyCoherent(fb);
      assert.deepEqual(r.differing, []);
      const device = dev.sessions()[0]!.bo(fb.id)!;
      assert.equal(device[49 * 320 + 16], 50);
      assert.equal(device[49 * 320 + 300], 0, 'pitch padding was never written');
      const ops = new Set<string>();
      for (const e of dev.log) {
        const m = decodeDriverFrame(e.frame);
        assert.ok(!(m instanceof ProtocolError), String(m));
        ops.add(m.op);
        assert.ok(!('seen' in m), `${m.op} carries seen`);
        if (!features.includes('fencedWrite' as never)) assert.ok(!('fence' in m && m.op !== 'fence'), `${m.op} carries a fence`);
      }
      for (const op of ['defineSurface', 'writeSurface', 'digest', 'stats', 'gpuWrite']) assert.ok(!ops.has(op), `sent ${op}`);
      assert.ok(ops.has('readback'));
    } finally {
      await env.close();
    }
  });
}

test('a quiet driver pings its session open against the device\'s idleTimeout', async () => {
  const env = await online({ idleTimeout: 300 });
  try {
    const { drv } = env;
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(drv.conn.sessions, 1, 'never closed for idleness');
    assert.ok(drv.conn.isOpen);
  } finally {
    await env.close();
  }
});
