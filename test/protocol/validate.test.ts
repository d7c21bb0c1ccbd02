import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseDeviceMessage, parseDriverMessage, ProtocolError } from '../../protocol/index.js';

function rejects(value: unknown, code: string, text: RegExp, seq?: number): void {
  const r = parseDriverMessage(value);
  assert.ok(r instanceof ProtocolError, `accepted ${JSON.stringify(value)}`);
  assert.equal(r.code, code);
  assert.match(r.message, text);
  assert.equal(r.seq, seq);
}

describe('validate', () => {
  it('rejects values that are not maps', () => {
    for (const v of [null, 3, 'hello', [], Buffer.from([1]), new Date(0), new Set(), new Error('x')]) rejects(v, 'bad_message', /not a map/);
  });

  it('rejects a missing or non-string op', () => {
    rejects({ seq: 4 }, 'bad_message', /op: expected str, got nothing/, 4);
    rejects({ op: 7, seq: 4 }, 'bad_message', /op: expected str, got 7/, 4);
  });

  it('rejects an unknown op and keeps its seq', () => {
    rejects({ op: 'frobnicate', seq: 9 }, 'unknown_op', /unknown op 'frobnicate'/, 9);
    rejects({ op: 'welcome', seq: 9 }, 'unknown_op', /unknown op 'welcome'/, 9); // device-only op
  });

  it('checks seq before op: an unknown op without a readable seq is a bad message (§7.3)', () => {
    rejects({ op: 'frobnicate' }, 'bad_message', /^seq: expected uint, got nothing/);
    rejects({ op: 7 }, 'bad_message', /^seq: expected uint/);
  });

  it('answers ops the receiver does not offer with unknown_op, before checking their fields', () => {
    const r = parseDriverMessage({ op: 'digest', seq: 3, bo: 'x' }, undefined, new Set(['write']));
    assert.ok(r instanceof ProtocolError);
    assert.deepEqual([r.code, r.seq], ['unknown_op', 3]);
    assert.match(r.message, /op 'digest' is not offered by this device/);
  });

  it('carries the fence of a rejected fence-carrying frame when seq and fence are readable', () => {
    const fenceOf = (v: unknown, problem?: string): number | undefined => (parseDriverMessage(v, problem) as ProtocolError).fence;
    assert.equal(fenceOf({ op: 'write', seq: 1, bo: 1, ranges: 'x', fence: 7 }), 7);
    assert.equal(fenceOf({ op: 'writeSurface', seq: 1, sid: 'x', boxes: [], fence: 8 }), 8);
    assert.equal(fenceOf({ op: 'fence', seq: 1, fence: 9, seen: -1 }), 9);
    assert.equal(fenceOf({ op: 'write', seq: 1, bo: 1, ranges: [], fence: 7 }, 'key given twice'), 7);
    assert.equal(fenceOf({ op: 'write', bo: 1, ranges: 'x', fence: 7 }), undefined, 'no seq: no fence');
    assert.equal(fenceOf({ op: 'write', seq: 1, bo: 1, ranges: 'x', fence: -7 }), undefined, 'unreadable fence');
    assert.equal(fenceOf({ op: 'readback', seq: 1, bo: 'x', ranges: [], fence: 7 }), undefined, 'not a fence carrier');
  });

  it('makes a decoder shape problem a bad message, keeping seq', () => {
    const r = parseDriverMessage({ op: 'stats', seq: 2 }, 'nesting deeper than 8 levels');
    assert.ok(r instanceof ProtocolError);
    assert.deepEqual([r.code, r.message, r.seq], ['bad_message', 'nesting deeper than 8 levels', 2]);
  });

  it('names the field and the problem for wrong types', () => {
    rejects({ op: 'defineBo', seq: 1, bo: 1 }, 'bad_message', /defineBo\.size: missing/, 1);
    rejects({ op: 'defineBo', seq: 1, bo: -1, size: 4 }, 'bad_message', /defineBo\.bo: expected u32, got -1/, 1);
    rejects({ op: 'defineBo', seq: 1, bo: 2 ** 32, size: 4 }, 'bad_message', /bo: expected u32/, 1);
    rejects({ op: 'defineBo', seq: 1, bo: 1.5, size: 4 }, 'bad_message', /bo: expected u32, got 1.5/, 1);
    rejects({ op: 'write', seq: 2, bo: 1, ranges: [[0, Buffer.alloc(1)], [4, 'ab']] }, 'bad_message', /write\.ranges\[1\]\[1\]: expected bin, got "ab"/, 2);
    rejects({ op: 'write', seq: 2, bo: 1, ranges: [[0]] }, 'bad_message', /ranges\[0\]: expected array of 2, got array\(1\)/, 2);
    rejects({ op: 'writeSurface', seq: 3, sid: 1, boxes: {} }, 'bad_message', /boxes: expected array, got map/, 3);
    rejects({ op: 'hello', min: 1, max: 1, role: 'root' }, 'bad_message', /hello\.role: expected 'driver' or 'control'/);
  });

  it('rejects a seq that is not a safe uint, reporting no seq', () => {
    rejects({ op: 'stats', seq: -1 }, 'bad_message', /^seq: expected uint, got -1/);
    rejects({ op: 'stats', seq: 2 ** 53 }, 'bad_message', /expected uint/);
    rejects({ op: 'stats', seq: '1' }, 'bad_message', /expected uint, got "1"/);
  });

  it('drops unknown keys and accepts nil for optional fields', () => {
    assert.deepEqual(parseDriverMessage({ op: 'stats', seq: 1, extra: 'x' }), { op: 'stats', seq: 1 });
    assert.deepEqual(parseDriverMessage({ seq: 1, extra: undefined, op: 'stats' }), { op: 'stats', seq: 1 });
    assert.deepEqual(parseDriverMessage(Object.assign(Object.create(null), { op: 'stats', seq: 1 })), { op: 'stats', seq: 1 }, 'always a plain object');
    assert.deepEqual(parseDriverMessage({ op: 'fence', seq: 2, fence: 3, seen: null }), { op: 'fence', seq: 2, fence: 3 });
    assert.deepEqual(parseDriverMessage({ op: 'hello', min: 1, max: 1, token: null }), { op: 'hello', min: 1, max: 1 });
  });

  it('checks device messages too', () => {
    const r = parseDeviceMessage({ op: 'signaled', seq: 1, fence: 1, ok: 'yes' });
    assert.ok(r instanceof ProtocolError);
    assert.match(r.message, /signaled\.ok: expected bool/);
    assert.deepEqual(parseDeviceMessage({ op: 'pong', seq: 5 }), { op: 'pong', seq: 5 });
  });

  it('never throws, whatever the value', () => {
    const anyValue = fc.anything({ withBigInt: true, withDate: true, withTypedArray: true, withNullPrototype: true });
    const messageLike = fc.record({ op: fc.constantFrom('write', 'hello', 'fence', 'writeSurface', 'x'), seq: fc.anything(), ranges: fc.anything(), bo: fc.anything() });
    fc.assert(
      fc.property(fc.oneof(anyValue, messageLike), (v) => {
        const r = parseDriverMessage(v);
        assert.ok(r instanceof ProtocolError || typeof r.op === 'string');
        const d = parseDeviceMessage(v);
        assert.ok(d instanceof ProtocolError || typeof d.op === 'string');
      }),
      { numRuns: 3000 },
    );
  });
});
