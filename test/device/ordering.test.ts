import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { startDevice, type Device } from '../../device/index.js';
import type { DeviceMessage } from '../../protocol/index.js';
import { WireClient } from '../../src/conformance/index.js';

/** Every reply carrying a seq must come in increasing seq order (pong excepted: it answers on receipt). */
function assertOrdered(msgs: readonly DeviceMessage[]): void {
  let last = 0;
  for (const m of msgs) {
    if (m.op === 'pong' || !('seq' in m) || m.seq === undefined) continue;
    assert.ok(m.seq > last, `${m.op} seq ${m.seq} after ${last}`);
    last = m.seq;
  }
}

describe('ordering', () => {
  let device: Device;
  before(async () => {
    device = await startDevice({ fenceLatency: 2 });
  });
  after(() => device.close());

  it('signals pipelined fences in submission order, each after the writes before it', async () => {
    const c = await WireClient.session(device.url);
    try {
      c.cmd({ op: 'defineBo', bo: 1, size: 4096 });
      const fences: number[] = [];
      for (let i = 0; i < 300; i++) {
        c.cmd({ op: 'write', bo: 1, ranges: [[i % 4096, Buffer.of(i & 0xff)]] });
        if (i % 3 === 0) {
          // A varying injected delay per fence: later fences must still wait for earlier ones.
          device.faults.delayFences((i * 7) % 13, { count: 1, session: c.welcome!.session });
          fences.push(c.cmd({ op: 'fence', fence: 1000 + i }));
        }
      }
      const signals = [];
      for (const seq of fences) {
        const s = await c.expect('signaled');
        assert.deepEqual([s.seq, s.ok], [seq, true]);
        signals.push(s.fence);
      }
      assert.deepEqual(signals, fences.map((_, k) => 1000 + 3 * k));
    } finally {
      await c.close();
    }
  });

  it('matches a model under random pipelined command sequences, replies in seq order', async () => {
    const size = 2048;
    const op = fc.oneof(
      fc.record({ kind: fc.constant('write' as const), offset: fc.nat({ max: size - 1 }), len: fc.nat({ max: 64 }), fill: fc.nat({ max: 255 }) }),
      fc.record({ kind: fc.constant('readback' as const), offset: fc.nat({ max: size - 1 }), len: fc.nat({ max: 64 }) }),
      fc.record({ kind: fc.constant('fence' as const), delay: fc.nat({ max: 5 }) }),
      fc.constant({ kind: 'ping' as const }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
        const c = await WireClient.session(device.url);
        try {
          const model = new Uint8Array(size);
          const expected: DeviceMessage[] = [];
          c.cmd({ op: 'defineBo', bo: 1, size });
          for (const o of ops) {
            if (o.kind === 'ping') {
              c.cmd({ op: 'ping' });
              continue;
            }
            if (o.kind === 'fence') {
              device.faults.delayFences(o.delay, { count: 1, session: c.welcome!.session });
              const seq = c.cmd({ op: 'fence', fence: 7 });
              expected.push({ op: 'signaled', seq, fence: 7, ok: true });
              continue;
            }
            // Ranges past the BO end are rejected whole; the model must stay unchanged then.
            const fits = o.offset + o.len <= size;
            if (o.kind === 'write') {
              const data = Buffer.alloc(o.len, o.fill);
              const seq = c.cmd({ op: 'write', bo: 1, ranges: [[o.offset, data]] });
              if (fits) model.set(data, o.offset);
              else expected.push({ op: 'error', code: 'out_of_range', message: '', seq });
            } else {
              const seq = c.cmd({ op: 'readback', bo: 1, ranges: [[o.offset, o.len]] });
              expected.push(
                fits
                  ? { op: 'readbackData', seq, bo: 1, ranges: [[o.offset, Buffer.from(model.subarray(o.offset, o.offset + o.len))]] }
                  : { op: 'error', code: 'out_of_range', message: '', seq },
              );
            }
          }
          const last = c.cmd({ op: 'readback', bo: 1, ranges: [[0, size]] });
          expected.push({ op: 'readbackData', seq: last, bo: 1, ranges: [[0, Buffer.from(model)]] });
          const got: DeviceMessage[] = [];
          while (got.length < expected.length) {
            const m = await c.next();
            if (m.op !== 'pong') got.push(m);
          }
          assertOrdered(c.received as DeviceMessage[]); // next() already rejected any invalid frame
          // Fence results depend on earlier errors; compare op and seq for all, contents where modelled.
          assert.deepEqual(got.map((m) => [m.op, 'seq' in m ? m.seq : -1]), expected.map((m) => [m.op, 'seq' in m ? m.seq : -1]));
          for (let i = 0; i < got.length; i++) {
            if (expected[i]!.op === 'readbackData') assert.deepEqual(got[i], expected[i]);
          }
        } finally {
          await c.close();
        }
      }),
      { numRuns: 25 },
    );
  });
});
