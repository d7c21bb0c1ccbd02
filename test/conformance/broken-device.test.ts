// A deliberately broken device (the real one behind a frame-rewriting proxy) fails exactly the
// cases that check what it breaks, and passes the others of the same groups.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDevice, type Device } from '../../device/index.js';
import { runConformance, type Report } from '../../src/conformance/index.js';
import { earlyFence, nonAtomicWrite, startBrokenDevice, type Defect } from './broken-device.js';
import { SMALL_DEVICE, TOKEN } from './devices.js';

async function against(device: Device, defect: Defect, only: string[]): Promise<Report> {
  const broken = await startBrokenDevice(device.url, defect);
  try {
    return await runConformance({ url: broken.url, token: TOKEN, only });
  } finally {
    await broken.close();
  }
}

const failed = (r: Report): string[] => r.results.filter((x) => x.status === 'FAIL').map((x) => x.id);

describe('a broken device', () => {
  let device: Device;
  before(async () => {
    device = await startDevice({ ...SMALL_DEVICE, controlToken: undefined });
  });
  after(() => device.close());

  it('that signals fences on arrival fails the fence-order and failure-accounting cases', async () => {
    const r = await against(device, earlyFence, ['fence.', 'order.', 'atom.', 'bo.']);
    assert.deepEqual(failed(r), [
      'fence.failure-accounting', 'fence.after-replies', 'fence.failure-continues', 'fence.errseq-absent',
      'fence.in-write-rejected', 'fence.unreadable-seq', 'order.model', 'bo.destroy', 'bo.exists',
    ]);
    assert.match(r.results.find((x) => x.id === 'fence.after-replies')!.detail, /replies in order/);
    assert.ok(r.results.filter((x) => x.id.startsWith('atom.')).every((x) => x.status === 'PASS'), 'atomicity is intact');
  });

  it('that applies a write range by range fails the atomicity cases of write only', async () => {
    const r = await against(device, nonAtomicWrite, ['atom.', 'bo.', 'fence.ok']);
    assert.deepEqual(failed(r), ['atom.write', 'atom.write-limit']);
    assert.match(r.results.find((x) => x.id === 'atom.write')!.detail, /after a rejected write: \d+ of \d+ bytes differ, the first at 0/);
  });
});
