// Per-page digest shared by device and driver so both compute identical hashes.
// digest(page) = first 8 bytes of SHA-256(page bytes). SHA-256 is in every language's standard
// library; 64 bits make an accidental match between different pages negligible for a
// coherency check (not a security property).
import { createHash } from 'node:crypto';
import { DIGEST_BYTES } from './constants.js';

/** Number of pages (the last one possibly partial) covering `length` bytes. */
export function pageCount(length: number, pageSize: number): number {
  return Math.ceil(length / pageSize);
}

/**
 * Digests of consecutive pages of `bytes`: page i is bytes [i·pageSize, min((i+1)·pageSize,
 * bytes.length)). Returns DIGEST_BYTES per page, concatenated in page order.
 */
export function pageDigests(bytes: Uint8Array, pageSize: number): Uint8Array {
  if (!Number.isSafeInteger(pageSize) || pageSize <= 0) throw new RangeError(`bad page size ${pageSize}`);
  const pages = pageCount(bytes.length, pageSize);
  const out = new Uint8Array(pages * DIGEST_BYTES);
  for (let i = 0; i < pages; i++) {
    const page = bytes.subarray(i * pageSize, (i + 1) * pageSize);
    out.set(createHash('sha256').update(page).digest().subarray(0, DIGEST_BYTES), i * DIGEST_BYTES);
  }
  return out;
}
