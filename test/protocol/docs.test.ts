// The worked examples in docs/protocol.md must be exactly what the codec produces.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { decode } from '@msgpack/msgpack';
import { decodeDeviceFrame, decodeDriverFrame, Encoder, ProtocolError, type Message } from '../../protocol/index.js';

const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
const examples = [...doc.matchAll(/\*\*([→←])([^*]*)\*\*[^\n]*\n\n```json\n(.*?)\n```\n```hex\n([\s\S]*?)\n```/g)].map(([, arrow, title, json, hex]) => ({
  fromDriver: arrow === '→',
  /** A driver frame the document shows being rejected as a bad message. */
  bad: /bad message/.test(title!),
  value: JSON.parse(json!, (_k, v: unknown) =>
    typeof v === 'object' && v !== null && '$bin' in v ? Buffer.from((v as { $bin: string }).$bin, 'hex') : v,
  ) as Message,
  bytes: Buffer.from(hex!.replace(/\s+/g, ''), 'hex'),
}));

describe('docs/protocol.md examples', () => {
  it('has an example of every op', () => {
    const ops = new Set(examples.map((e) => e.value.op));
    for (const op of ['hello', 'welcome', 'defineBo', 'write', 'fence', 'signaled', 'readback', 'readbackData', 'error',
      'defineSurface', 'writeSurface', 'writeSpans', 'digest', 'digestData', 'gpuWrite', 'deviceWrite', 'stats', 'ping', 'pong']) {
      assert.ok(ops.has(op as Message['op']), op);
    }
  });

  it('hex dumps are the codec output', () => {
    const encoder = new Encoder();
    for (const { value, bytes } of examples) {
      assert.equal(Buffer.from(encoder.encode(value)).toString('hex'), bytes.toString('hex'), value.op);
    }
  });

  it('hex dumps decode to the shown message with an independent decoder and validate (bad messages as bad messages)', () => {
    for (const { value, bytes, fromDriver, bad } of examples) {
      assert.deepEqual(decode(bytes), value, value.op);
      const typed = fromDriver ? decodeDriverFrame(bytes) : decodeDeviceFrame(bytes);
      if (bad) assert.ok(typed instanceof ProtocolError && typed.code === 'bad_message', `${value.op} should be a bad message`);
      else assert.ok(!(typed instanceof ProtocolError), `${value.op}: ${String(typed)}`);
    }
  });

  it('found every example block', () => {
    assert.equal(examples.length, (doc.match(/```hex\n/g) ?? []).length);
  });
});
