// Replays the worked session of docs/protocol.md §13 against a real device: the device's
// replies must be the ones the document shows.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { startDevice } from '../../device/index.js';
import { decodeDeviceFrame } from '../../protocol/index.js';
import { WireClient } from '../../src/conformance/index.js';

const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
const worked = doc.slice(doc.indexOf('## 13. Worked examples'));
const blocks = [...worked.matchAll(/\*\*([→←])[\s\S]*?```hex\n([\s\S]*?)\n```/g)].map(([, arrow, hex]) => ({
  fromDriver: arrow === '→',
  frame: Buffer.from(hex!.replace(/\s+/g, ''), 'hex'),
}));

describe('docs worked session on a real device', () => {
  it('produces exactly the documented replies', async () => {
    const device = await startDevice({ token: 'secret' });
    const c = await WireClient.open(device.url);
    try {
      const driverFrames = blocks.filter((b) => b.fromDriver).map((b) => b.frame);
      const documented = blocks.filter((b) => !b.fromDriver).map((b) => decodeDeviceFrame(b.frame));
      for (const f of driverFrames) c.ws.send(f);
      // Replies not shown in the document: statsData, and the signal of the last fence.
      const shown = [];
      while (shown.length < documented.length) {
        const m = await c.next();
        if (m.op !== 'statsData') shown.push(m);
      }
      // Session ids are random: the document shows 1.
      assert.equal(shown[0]!.op, 'welcome');
      assert.deepEqual([{ ...shown[0]!, session: 1 }, ...shown.slice(1)], documented);
      assert.equal((await c.expect('signaled')).seq, 2 ** 32);
      assert.ok(driverFrames.length >= 12 && documented.length >= 8);
    } finally {
      await c.close();
      await device.close();
    }
  });
});
