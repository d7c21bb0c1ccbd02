import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EncodingChooser } from '../../src/index.js';

const all = () => true;
const only = (...features: string[]) => (f: string) => features.includes(f);
/** Text-like data: compresses well. */
/** 1 MiB in flight for ~100 ms: about 10 MB/s. */
function slowLink(c: EncodingChooser): void {
  c.frameSent(1 << 20);
  const t = performance.now();
  while (performance.now() - t < 100);
  c.frameSettled(1 << 20);
}
const data = new TextEncoder().encode('the quick brown fox jumps over the lazy dog. '.repeat(4000));

test('each mode falls back to what the device offers', () => {
  assert.deepEqual(new EncodingChooser('raw').batch(all), { spans: false, delta: false });
  assert.deepEqual(new EncodingChooser('spans').batch(all), { spans: true, delta: false });
  assert.deepEqual(new EncodingChooser('delta').batch(all), { spans: true, delta: true });
  assert.deepEqual(new EncodingChooser('auto').batch(only('surfaces')), { spans: false, delta: false });
  assert.equal(new EncodingChooser('deflate').codec(data, all), 'deflate');
  assert.equal(new EncodingChooser('deflate').codec(data, only('writeSpans')), 'none');
  assert.equal(new EncodingChooser('delta').codec(data, all), 'none');
});

test('auto sends raw until the link is measured, compresses on a slow link and not on a fast one', () => {
  const slow = new EncodingChooser('auto');
  assert.equal(slow.codec(data, all), 'none', 'link not measured yet');
  slowLink(slow);
  assert.ok(slow.linkRate > 5_000 && slow.linkRate < 20_000, `link ${slow.linkRate} bytes/ms`);
  assert.equal(slow.codec(data, all), 'deflate');
  assert.ok(slow.compressRate > 0 && slow.compressRatio < 0.1, `sampled: ${slow.compressRate} bytes/ms, ratio ${slow.compressRatio}`);

  const fast = new EncodingChooser('auto');
  fast.noteCompression(1 << 20, 1 << 15, 10); // 100 MB/s of CPU
  fast.frameSent(1 << 20);
  fast.frameSettled(1 << 20); // 1 MiB at once: as fast as the timer can tell
  assert.equal(fast.codec(data, all), 'none');
});

test('small frames do not measure the link (their round trip says nothing of its speed)', () => {
  const c = new EncodingChooser('auto');
  c.frameSent(4096);
  const t = performance.now();
  while (performance.now() - t < 20);
  c.frameSettled(4096);
  assert.equal(c.linkRate, 0);
  assert.equal(c.codec(data, all), 'none');
});

test('data that does not compress is sent raw even on a slow link', () => {
  const c = new EncodingChooser('auto');
  slowLink(c);
  const random = new Uint8Array(64 * 1024).map((_, i) => (Math.imul(i, 2654435761) >>> 13) & 0xff);
  c.noteCompression(1 << 20, 1 << 20, 5); // ratio 1: nothing gained
  assert.equal(c.codec(random, all), 'none');
});
