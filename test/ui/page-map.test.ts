import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bitmap } from '../../src/index.js';
import { PAGE_CLEAN, PAGE_DEVICE_NEWER, PAGE_DIRTY, PAGE_SENDING, PageMap, readDirtyPages } from '../../src/ui/index.js';
import { online, PS, until } from '../driver/fixtures.js';

function count(states: Uint8Array, s: number): number {
  return states.reduce((a, v) => a + (v === s ? 1 : 0), 0);
}

for (const [method, dirty] of [['pagetable', { mkwriteThresholdPages: Infinity }], ['mkwrite', { mkwriteThresholdPages: 0 }]] as const) {
  test(`${method}: written pages are dirty, then being sent until their flush settles, then clean; heat counts frames`, async () => {
    const o = await online({}, { dirty: { ...dirty, changeTriggers: Infinity } });
    try {
      const { bo, v } = o.buffer(16);
      assert.equal(bo.tracker!.method, method);
      const cpu = o.machine.cpus[0]!;
      const map = new PageMap(bo);
      const states = new Uint8Array(16);
      for (const p of [1, 5, 6]) cpu.write32(o.mm, v.start + p * PS + 8, 0xabc);
      assert.equal(map.observeFrame(0), 3);
      assert.deepEqual(map.lastDirty.toArray(), [1, 5, 6]);
      map.states(states);
      assert.equal(count(states, PAGE_DIRTY), 3);
      const r = await o.drv.flush();
      assert.equal(r.pagesTransferred, 3, 'reading the dirty state took nothing from the flush');
      assert.equal(count(map.states(states), PAGE_SENDING), 3, 'the round took them; the dashboard has not seen the flush settle');
      map.flushSettled(0);
      assert.equal(count(map.states(states), PAGE_CLEAN), 16);
      cpu.write32(o.mm, v.start + 5 * PS, 1);
      map.observeFrame(1);
      assert.deepEqual(Array.from(map.heat), [0, 1, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    } finally {
      await o.close();
    }
  });
}

test('a page dirtied again belongs to the later flush; a failed flush leaves what it carried dirty', async () => {
  const o = await online();
  try {
    const { bo, v } = o.buffer(8);
    const cpu = o.machine.cpus[0]!;
    const map = new PageMap(bo);
    const states = new Uint8Array(8);
    cpu.write32(o.mm, v.start, 1);
    cpu.write32(o.mm, v.start + PS, 1);
    map.observeFrame(0);
    await o.drv.flush();
    cpu.write32(o.mm, v.start + PS, 2);
    map.observeFrame(1);
    const f1 = o.drv.flush();
    map.flushSettled(0);
    await f1;
    map.states(states);
    assert.equal(states[0], PAGE_CLEAN, 'flush 0 settled');
    assert.equal(states[1], PAGE_SENDING, 'page 1 belongs to flush 1 until it settles');
    map.flushSettled(1);
    assert.equal(map.states(states)[1], PAGE_CLEAN);

    o.dev.faults.failNth(1, { message: 'injected' });
    cpu.write32(o.mm, v.start + 4 * PS, 3);
    map.observeFrame(2);
    await assert.rejects(o.drv.flush());
    map.flushSettled(2);
    assert.equal(map.states(states)[4], PAGE_DIRTY, 'the driver keeps what a failed round carried dirty');
  } finally {
    await o.close();
  }
});

test('pages the device changed are newer on the device until their readback lands', async () => {
  const o = await online();
  try {
    const { bo, v } = o.buffer(8);
    await o.drv.flush();
    const map = new PageMap(bo);
    o.dev.session(o.drv.conn.welcome!.session)!.gpuWrite(bo.id, [[3 * PS + 4, new Uint8Array([9, 9])]]);
    await until(() => bo.deviceNewer.test(3), 'the deviceWrite announcement');
    const states = map.states(new Uint8Array(8));
    assert.equal(states[3], PAGE_DEVICE_NEWER);
    assert.equal(count(states, PAGE_DEVICE_NEWER), 1);
    const cpu = o.machine.cpus[0]!;
    assert.deepEqual(Array.from(await cpu.readAsync(o.mm, v.start + 3 * PS + 4, 2)), [9, 9]);
    assert.equal(map.states(states)[3], PAGE_CLEAN, 'read back');
  } finally {
    await o.close();
  }
});

test('an untracked BO (strategy full) counts every page as dirty', async () => {
  const o = await online();
  try {
    const bo = o.drv.createBo(5 * PS, { tracked: false });
    const out = readDirtyPages(bo, new Bitmap(5));
    assert.equal(out.count(), 5);
  } finally {
    await o.close();
  }
});

test('dirty state parked in resources (after a failed round) counts as dirty', async () => {
  const o = await online();
  try {
    const { bo } = o.buffer(4);
    bo.resources[0]!.dirtyRangeAdd(2 * PS + 10, 2 * PS + 20);
    assert.deepEqual(readDirtyPages(bo, new Bitmap(4)).toArray(), [2]);
    bo.resources[0]!.markAllDirty();
    assert.deepEqual(readDirtyPages(bo, new Bitmap(4)).toArray(), [0, 1, 2, 3]);
  } finally {
    await o.close();
  }
});
