import { workerData } from 'node:worker_threads';
import { bindLibc } from './libc.js';

/**
 * A writer thread of the concurrent check (concurrent-check.ts): stores into
 * the shared memory through its own view of the same addresses until told
 * to stop, counting its stores. Data: { base, length, seed, control }, where
 * control[0] is the stop flag and control[1 + id] this writer's count.
 */
interface WriterData {
  id: number;
  base: number;
  length: number;
  seed: number;
  control: SharedArrayBuffer;
}

const { id, base, length, seed, control } = workerData as WriterData;
const libc = await bindLibc();
if (typeof libc === 'string') throw new Error(libc);
const bytes = new Uint8Array(libc.view(base, length));
const ctl = new Int32Array(control);
let s = seed >>> 0 || 1;
const next = (): number => {
  // xorshift32: each writer its own deterministic stream (the interleaving is not).
  s ^= s << 13;
  s ^= s >>> 17;
  s ^= s << 5;
  return (s >>>= 0);
};
let stores = 0;
while (Atomics.load(ctl, 0) === 0) {
  for (let i = 0; i < 64; i++) {
    const len = 1 + (next() % 48);
    const at = next() % (length - len);
    bytes.fill((id * 61 + stores) & 0xff, at, at + len);
    stores++;
  }
  Atomics.store(ctl, 1 + id, stores);
}
Atomics.store(ctl, 1 + id, stores);
