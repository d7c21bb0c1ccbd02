// Replays the worked session of docs/protocol.md §13 against a real device: the device's
// replies must be the ones the document shows.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { startDevice } from '../../device/index.js';
import { decodeDeviceFrame, decodeDriverFrame, ProtocolError } from '../../protocol/index.js';
import { TestClient } from './client.js';

const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
const worked = doc.slice(doc.indexOf('## 13. Worked examples'));
const frames = [...worked.matchAll(/```hex\n([\s\S]*?)\n```/g)].map(([, hex]) => Buffer.from(hex!.replace(/\s+/g, ''), 'hex'));
const isDriver = (f: Buffer): boolean => !(decodeDriverFrame(f) instanceof ProtocolError);

describe('docs worked session on a real device', () => {
  it('produces exactly the documented replies', async () => {
    const device = await startDevice({ token: 'secret' });
    const c = await TestClient.connect(device.url, false);
    try {
      const driverFrames = frames.filter(isDriver);
      const documented = frames.filter((f) => !isDriver(f)).map((f) => decodeDeviceFrame(f));
      for (const f of driverFrames) c.ws.send(f);
      // Replies not shown in the document: statsData, and the signal of the last fence.
      const shown = [];
      while (shown.length < documented.length) {
        const m = await c.next();
        if (m.op !== 'statsData') shown.push(m);
      }
      assert.deepEqual(shown, documented);
      assert.equal((await c.expect('signaled')).seq, 2 ** 32);
      assert.ok(driverFrames.length >= 12 && documented.length >= 8);
    } finally {
      await c.close();
      await device.close();
    }
  });
});
