import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UnseenWrites } from '../../device/unseen.js';

const bytes = () => new Uint8Array(16);
const write = (b: Uint8Array, fill: number) => () => (b.fill(fill), b.length);

test('a frame older than a device write keeps that write\'s bytes; the rest is applied', () => {
  const u = new UnseenWrites();
  const b = bytes();
  b.fill(9, 4, 8); // the device's write, then announced
  u.announce(1, [[4, new Uint8Array(4)]]);
  u.applyKeeping(1, b, 0, write(b, 7));
  assert.deepEqual([...b], [7, 7, 7, 7, 9, 9, 9, 9, 7, 7, 7, 7, 7, 7, 7, 7]);
});

test('a frame that had seen the announcement is applied as sent, and so is one without seen', () => {
  const u = new UnseenWrites();
  const b = bytes();
  u.announce(1, [[4, new Uint8Array(4)]]);
  u.applyKeeping(1, b, undefined, write(b, 3));
  assert.ok(b.every((v) => v === 3));
  u.applyKeeping(1, b, 1, write(b, 5));
  assert.ok(b.every((v) => v === 5));
});

test('acknowledged announcements are forgotten; other BOs are not protected', () => {
  const u = new UnseenWrites();
  const b = bytes();
  u.announce(1, [[0, new Uint8Array(2)]]);
  u.announce(2, [[0, new Uint8Array(2)]]);
  u.acknowledge(1);
  u.applyKeeping(2, b, 1, write(b, 4)); // BO 2's write (announcement 2) is unseen: kept
  assert.deepEqual([...b.subarray(0, 3)], [0, 0, 4]);
  const c = bytes();
  u.applyKeeping(1, c, 1, write(c, 6)); // BO 1 has nothing unseen
  assert.ok(c.every((v) => v === 6));
});
