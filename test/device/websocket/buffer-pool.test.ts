import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MessageBufferPool, POISON_BYTE } from '../../../device/websocket/buffer-pool.js';

describe('message buffer pool', () => {
  it('refuses a second release of a buffer already free: two acquisitions never share memory', () => {
    const pool = new MessageBufferPool();
    const b = pool.acquire(1000);
    pool.release(b);
    pool.release(b);
    assert.equal(pool.doubleReleases, 1);
    assert.equal(pool.idleBytes, b.length, 'held once');
    const x = pool.acquire(1000);
    const y = pool.acquire(1000);
    assert.notEqual(x.buffer, y.buffer);
    x.fill(1);
    y.fill(2);
    assert.equal(x[0], 1);
  });

  it('reuses a released buffer of a near size, poisoned in poison mode; bounded by maxFreeBytes', () => {
    const pool = new MessageBufferPool({ poison: true, maxFreeBytes: 8 << 10 });
    const a = pool.acquire(3000).fill(7);
    const b = pool.acquire(3000);
    const c = pool.acquire(3000);
    pool.release(a);
    assert.ok(a.every((v) => v === POISON_BYTE));
    pool.release(b);
    pool.release(c); // over 8 KiB: dropped
    assert.equal(pool.idleBytes, 8 << 10);
    assert.equal(pool.acquire(2000), b, 'last released first');
    assert.equal(pool.reused, 1);
    pool.close();
    pool.release(a);
    assert.equal(pool.idleBytes, 0);
  });
});
