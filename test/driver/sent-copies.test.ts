import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DELTA_BLOCK, SentCopy } from '../../src/index.js';
import { propertySeed } from '../core/fixtures.js';

const PS = 4096;

/** Guest memory as pages, a device copy, and the driver's last-sent copy of one BO. */
function world(size: number) {
  const guest = new Uint8Array(Math.ceil(size / PS) * PS);
  const device = new Uint8Array(size);
  const copy = new SentCopy(size);
  const page = (i: number) => guest.subarray(i * PS, (i + 1) * PS);
  /** Sends [offset, offset+length) as deltas, at most `cap` bytes per emit; returns the bytes sent. */
  const send = (offset: number, length: number, cap = Infinity): number => {
    let sent = 0;
    let at = offset;
    const end = offset + length;
    while (at < end) {
      at = copy.diff(at, end - at, PS, page, (s, e) => {
        const n = Math.min(e - s, cap);
        device.set(guest.subarray(s, s + n), s);
        copy.store(s, guest, s, n);
        sent += n;
        return s + n;
      });
    }
    return sent;
  };
  return { guest, device, copy, send };
}

test('a delta sends only the blocks that changed since the last send, and whole blocks it does not know', () => {
  const w = world(4 * PS);
  w.guest.fill(3);
  assert.equal(w.send(0, 4 * PS), 4 * PS, 'nothing known: everything');
  assert.equal(w.send(0, 4 * PS), 0, 'nothing changed: nothing');
  w.guest[PS + 5] = 9;
  w.guest[3 * PS + 100] = 9;
  assert.equal(w.send(0, 4 * PS), 2 * DELTA_BLOCK, 'two changed blocks');
  w.copy.forget(2 * PS + 1, 2);
  assert.equal(w.send(0, 4 * PS), DELTA_BLOCK, 'a forgotten block goes whole');
  w.copy.forgetAll();
  assert.equal(w.send(PS, PS), PS, 'all forgotten');
  assert.deepEqual(w.device, w.guest.subarray(0, 4 * PS));
});

test('a partly covered block stays unknown until a send covers it whole', () => {
  const w = world(PS);
  w.send(10, 20); // blocks 0 and 1 partly
  assert.equal(w.send(10, 20), 20, 'still unknown: sent again');
  w.send(0, 32);
  assert.equal(w.send(10, 20), 0, 'known now');
});

test('property: after sending a range (in pieces of any size), the device holds the guest bytes of it', () => {
  const size = 3 * PS + 100; // a last page that is partly outside the BO
  const op = fc.oneof(
    fc.record({ kind: fc.constant('write' as const), at: fc.nat(size - 1), len: fc.integer({ min: 1, max: 300 }), value: fc.nat(255) }),
    fc.record({ kind: fc.constant('send' as const), at: fc.nat(size - 1), len: fc.integer({ min: 1, max: size }), cap: fc.integer({ min: 1, max: 5000 }) }),
    fc.record({ kind: fc.constant('deviceWrite' as const), at: fc.nat(size - 1), len: fc.integer({ min: 1, max: 300 }), value: fc.nat(255) }),
    fc.record({ kind: fc.constant('lost' as const) }),
  );
  fc.assert(fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
    const w = world(size);
    for (const o of ops) {
      if (o.kind === 'write') w.guest.fill(o.value, o.at, Math.min(size, o.at + o.len));
      else if (o.kind === 'deviceWrite') {
        // The device changes bytes and announces them; the driver reads them back.
        const end = Math.min(size, o.at + o.len);
        w.device.fill(o.value, o.at, end);
        w.guest.fill(o.value, o.at, end);
        w.copy.forget(o.at, end - o.at);
      } else if (o.kind === 'lost') {
        w.device.fill(0x5a); // a frame that was not applied as assumed, or a new device
        w.copy.forgetAll();
      } else {
        const len = Math.min(o.len, size - o.at);
        w.send(o.at, len, o.cap);
        assert.deepEqual(w.device.subarray(o.at, o.at + len), w.guest.subarray(o.at, o.at + len));
      }
    }
  }), { seed: propertySeed(0x5e17), numRuns: 300 });
});
