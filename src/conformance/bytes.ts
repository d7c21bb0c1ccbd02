// Hand-built MessagePack, for frames an encoder would never produce: a chosen int format,
// non-string keys, reserved bytes, extension types, deep nesting, truncation.
export type Bytes = Uint8Array;

export function cat(...parts: (Bytes | number[])[]): Bytes {
  return Buffer.concat(parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p))));
}

export function str(s: string): Bytes {
  const b = Buffer.from(s, 'utf8');
  if (b.length < 32) return cat([0xa0 | b.length], b);
  return cat([0xd9, b.length], b);
}

export function fixmap(n: number): Bytes {
  return Uint8Array.of(0x80 | n);
}

export function fixarray(n: number): Bytes {
  return Uint8Array.of(0x90 | n);
}

export function bin(b: Bytes): Bytes {
  return cat([0xc4, b.length], b);
}

/** An unsigned value in a chosen int format. */
export function int(v: number, format: 'fix' | 'u8' | 'u16' | 'u32' | 'u64' | 'i8' | 'i16' | 'i32' | 'i64'): Bytes {
  const b = Buffer.alloc(9);
  switch (format) {
    case 'fix': return Uint8Array.of(v);
    case 'u8': return Uint8Array.of(0xcc, v);
    case 'u16': b[0] = 0xcd; b.writeUInt16BE(v, 1); return b.subarray(0, 3);
    case 'u32': b[0] = 0xce; b.writeUInt32BE(v, 1); return b.subarray(0, 5);
    case 'u64': b[0] = 0xcf; b.writeBigUInt64BE(BigInt(v), 1); return b;
    case 'i8': return Uint8Array.of(0xd0, v);
    case 'i16': b[0] = 0xd1; b.writeInt16BE(v, 1); return b.subarray(0, 3);
    case 'i32': b[0] = 0xd2; b.writeInt32BE(v, 1); return b.subarray(0, 5);
    case 'i64': b[0] = 0xd3; b.writeBigInt64BE(BigInt(v), 1); return b;
  }
}

/** A map of str keys to already encoded values. */
export function map(entries: [string, Bytes][]): Bytes {
  return cat(fixmap(entries.length), ...entries.flatMap(([k, v]) => [str(k), v]));
}

/** `depth` nested one-element arrays around a nil (array 32 headers only where needed). */
export function nested(depth: number): Bytes {
  const out = new Uint8Array(depth + 1).fill(0x91);
  out[depth] = 0xc0;
  return out;
}
