import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { DIGEST_BYTES, pageCount, pageDigests } from '../../protocol/index.js';

const sha8 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest().subarray(0, 8);

describe('digest', () => {
  it('is SHA-256 truncated to 8 bytes, per page, last page partial', () => {
    const data = Buffer.alloc(2 * 4096 + 100);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    const out = pageDigests(data, 4096);
    assert.equal(DIGEST_BYTES, 8);
    assert.equal(out.length, 3 * 8);
    assert.deepEqual(Buffer.from(out.subarray(0, 8)), sha8(data.subarray(0, 4096)));
    assert.deepEqual(Buffer.from(out.subarray(8, 16)), sha8(data.subarray(4096, 8192)));
    assert.deepEqual(Buffer.from(out.subarray(16, 24)), sha8(data.subarray(8192)));
  });

  it('matches a known vector and counts pages', () => {
    // SHA-256 of 4096 zero bytes starts with ad7facb2586fc6e9.
    assert.equal(Buffer.from(pageDigests(new Uint8Array(4096), 4096)).toString('hex'), 'ad7facb2586fc6e9');
    assert.equal(pageDigests(new Uint8Array(0), 4096).length, 0);
    assert.deepEqual([0, 1, 4096, 4097].map((n) => pageCount(n, 4096)), [0, 1, 1, 2]);
  });

  it('refuses a non-positive page size', () => {
    assert.throws(() => pageDigests(new Uint8Array(1), 0), RangeError);
  });
});
