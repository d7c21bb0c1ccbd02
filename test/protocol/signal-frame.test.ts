import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encode as msgpackEncode } from '@msgpack/msgpack';
import fc from 'fast-check';
import { decodeDeviceFrame, decodeFrame, Encoder, parseDeviceMessage, ProtocolError, U32_MAX, type DeviceMessage } from '../../protocol/index.js';
import { decodeSignaledOk, encodeSignaledOk } from '../../protocol/signal-frame.js';

const encoder = new Encoder();

/** What the general way (strict decoder, then validator) makes of a frame. */
function general(frame: Uint8Array): DeviceMessage | ProtocolError {
  const d = decodeFrame(frame);
  return d instanceof ProtocolError ? d : parseDeviceMessage(d.value, d.problem);
}

/** Same outcome: equal messages, or errors with the same code and text. */
function assertSameOutcome(actual: DeviceMessage | ProtocolError, expected: DeviceMessage | ProtocolError, frame: Uint8Array): void {
  const show = (r: DeviceMessage | ProtocolError) => (r instanceof ProtocolError ? { error: r.code, message: r.message } : r);
  assert.deepEqual(show(actual), show(expected), `frame ${Buffer.from(frame).toString('hex')}`);
}

/** Around every boundary of MessagePack's uint forms, and beyond u32. */
const uint = fc.oneof(
  fc.constantFrom(0, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, U32_MAX, U32_MAX + 1, Number.MAX_SAFE_INTEGER),
  fc.nat({ max: 300 }),
  fc.nat({ max: U32_MAX }),
  fc.maxSafeNat(),
);

describe('signal frame (the ok signal written and read directly)', () => {
  it('writes exactly the bytes of the general encoder, and falls back to it beyond u32', () => {
    fc.assert(
      fc.property(uint, uint, (seq, fence) => {
        const expected = encoder.encode({ op: 'signaled', seq, fence, ok: true });
        assert.deepEqual(Buffer.from(encoder.signaledOk(seq, fence)), Buffer.from(expected));
        const direct = encodeSignaledOk(seq, fence);
        if (seq <= U32_MAX && fence <= U32_MAX) assert.deepEqual(Buffer.from(direct!), Buffer.from(expected));
        else assert.equal(direct, null);
      }),
      { numRuns: 2000 },
    );
  });

  it('reads what it writes as the general way does', () => {
    fc.assert(
      fc.property(uint, uint, (seq, fence) => {
        const frame = encoder.signaledOk(seq, fence);
        assertSameOutcome(decodeDeviceFrame(frame), general(frame), frame);
        assert.deepEqual(decodeDeviceFrame(frame), { op: 'signaled', seq, fence, ok: true });
      }),
      { numRuns: 2000 },
    );
  });

  it('leaves every other layout to the general way: other key orders, longer int forms, failures, extra keys', () => {
    const others = [
      msgpackEncode({ seq: 1, op: 'signaled', fence: 2, ok: true }),
      Uint8Array.from([0x84, 0xa2, 0x6f, 0x70, 0xa8, ...Buffer.from('signaled'), 0xa3, ...Buffer.from('seq'), 0xcc, 0x05, 0xa5, ...Buffer.from('fence'), 0x02, 0xa2, ...Buffer.from('ok'), 0xc3]),
      encoder.encode({ op: 'signaled', seq: 1, fence: 2, ok: false, errors: 1, code: 'x', message: 'y', errSeq: 1 }),
      msgpackEncode({ op: 'signaled', seq: 1, fence: 2, ok: true, extra: 3 }),
    ];
    for (const frame of others) {
      assert.equal(decodeSignaledOk(frame), null, Buffer.from(frame).toString('hex'));
      assertSameOutcome(decodeDeviceFrame(frame), general(frame), frame);
      assert.ok(!(decodeDeviceFrame(frame) instanceof ProtocolError));
    }
  });

  it('accepts and rejects exactly what the general way does for damaged signal frames', () => {
    const damage = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.nat({ max: 255 }) }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }) }),
    );
    fc.assert(
      fc.property(uint, uint, fc.array(damage, { minLength: 1, maxLength: 3 }), (seq, fence, damages) => {
        let frame = Uint8Array.from(encoder.signaledOk(seq, fence));
        for (const d of damages) {
          if (d.kind === 'set' && frame.length > 0) frame[d.at % frame.length] = d.byte;
          else if (d.kind === 'cut') frame = frame.subarray(0, d.at % (frame.length + 1));
          else if (d.kind === 'append') frame = Uint8Array.from([...frame, ...d.bytes]);
        }
        assertSameOutcome(decodeDeviceFrame(frame), general(frame), frame);
      }),
      { numRuns: 5000 },
    );
  });
});
