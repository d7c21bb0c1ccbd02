import type { Data, Payload } from './format.js';

/**
 * The deterministic data generator of `random` payloads: xorshift32 from
 * `seed` (1 … 2^32 - 1); each step yields the new state's four bytes, least
 * significant first; the payload is the first `length` bytes of that stream.
 */
export function randomBytes(seed: number, length: number, into = new Uint8Array(length)): Uint8Array {
  let x = seed >>> 0;
  for (let i = 0; i < length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    into[i] = x & 0xff;
    if (i + 1 < length) into[i + 1] = (x >>> 8) & 0xff;
    if (i + 2 < length) into[i + 2] = (x >>> 16) & 0xff;
    if (i + 3 < length) into[i + 3] = x >>> 24;
  }
  return into;
}

/** The payload a blob reference stands for (its `resolved` one, else the table's), or the payload itself. */
function inPlace(d: Data, blobs: ReadonlyMap<number, Payload>): Payload {
  return d.kind === 'blob' ? (d.resolved ?? blobs.get(d.id)!) : d;
}

/** Bytes a payload stands for (a blob's through `blobs`). */
export function dataLength(d: Data, blobs: ReadonlyMap<number, Payload>): number {
  const p = inPlace(d, blobs);
  switch (p.kind) {
    case 'literal':
      return p.bytes.length;
    case 'runs':
      return p.counts.reduce((a, c) => a + c, 0) * p.unitSize;
    case 'random':
      return p.length;
  }
}

/**
 * Bytes a payload occupies as the reader keeps it (what the blob table's
 * budget counts): a literal's bytes, a run's units and 8 bytes per count, 16
 * for a random payload's two numbers.
 */
export function compactSize(p: Payload): number {
  switch (p.kind) {
    case 'literal':
      return p.bytes.length;
    case 'runs':
      return p.units.length + 8 * p.counts.length;
    case 'random':
      return 16;
  }
}

/** The bytes of a payload, made now (a literal's, and so a literal blob's, are shared: do not modify them). */
export function materialize(d: Data, blobs: ReadonlyMap<number, Payload>): Uint8Array {
  const p = inPlace(d, blobs);
  switch (p.kind) {
    case 'literal':
      return p.bytes;
    case 'random':
      return randomBytes(p.seed, p.length);
    case 'runs': {
      const out = new Uint8Array(dataLength(p, blobs));
      let at = 0;
      for (let i = 0; i < p.counts.length; i++) {
        const unit = p.units.subarray(i * p.unitSize, (i + 1) * p.unitSize);
        for (let n = 0; n < p.counts[i]!; n++, at += p.unitSize) out.set(unit, at);
      }
      return out;
    }
  }
}

/**
 * The compact form of `bytes`: runs of repeated units when that is at most
 * half the size (a fill, a row of solid pixels), the bytes themselves otherwise.
 * Units of 4 bytes (a pixel) are tried first, then single bytes.
 */
export function compactData(bytes: Uint8Array): Data {
  for (const unitSize of [4, 1]) {
    if (bytes.length === 0 || bytes.length % unitSize !== 0) continue;
    const runs = findRuns(bytes, unitSize, bytes.length / 2);
    if (runs !== null) return { kind: 'runs', unitSize, counts: runs.counts, units: runs.units };
  }
  return { kind: 'literal', bytes };
}

/** Split bytes into runs of equal units; null when the encoding would exceed `budget` bytes. */
function findRuns(bytes: Uint8Array, unitSize: number, budget: number): { counts: number[]; units: Uint8Array } | null {
  const counts: number[] = [];
  const starts: number[] = [];
  let cost = 0;
  for (let at = 0; at < bytes.length; ) {
    let end = at + unitSize;
    while (end < bytes.length && sameUnit(bytes, at, end, unitSize)) end += unitSize;
    counts.push((end - at) / unitSize);
    starts.push(at);
    cost += unitSize + 3;
    if (cost > budget) return null;
    at = end;
  }
  const units = new Uint8Array(starts.length * unitSize);
  starts.forEach((s, i) => units.set(bytes.subarray(s, s + unitSize), i * unitSize));
  return { counts, units };
}

function sameUnit(bytes: Uint8Array, a: number, b: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (bytes[a + i] !== bytes[b + i]) return false;
  return true;
}
