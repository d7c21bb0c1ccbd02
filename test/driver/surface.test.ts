import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SurfaceResource } from '../../src/index.js';
import { offlineSpace, PS } from './fixtures.js';
import { propertySeed } from '../core/fixtures.js';

function surface(width: number, height: number, depth: number, bpp: number, rowPad = 0, slicePad = 0) {
  const { space } = offlineSpace();
  const rowPitch = width * bpp + rowPad;
  const imagePitch = rowPitch * height + slicePad;
  const bo = space.create(imagePitch * depth + PS);
  return new SurfaceResource(bo, 0, 1, { width, height, depth, bytesPerPixel: bpp, rowPitch, imagePitch });
}

test('§3.10 worked example: page 3 of a 256x256x4 surface is box (0, 12, 0, 256, 4, 1)', () => {
  const s = surface(256, 256, 1, 4);
  s.dirtyRangeAdd(3 * PS, 4 * PS);
  assert.deepEqual(s.dirtyBoxes(), [{ x: 0, y: 12, z: 0, w: 256, h: 4, d: 1 }]);
});

test('a later run starting at a smaller x does not shrink the union (§6.C5)', () => {
  // 4096-pixel-wide 1-byte surface: a page is one row. Row 0 x∈[1024,2048), then row 2 x∈[0,1024).
  const s = surface(4096, 4, 1, 1);
  s.dirtyRangeAdd(1024, 2048);
  s.dirtyRangeAdd(2 * 4096, 2 * 4096 + 1024);
  const covered = (x: number, y: number) => s.dirtyBoxes().some((b) => x >= b.x && x < b.x + b.w && y >= b.y && y < b.y + b.h);
  assert.ok(covered(1500, 0), 'row 0, second half still covered');
  assert.ok(covered(500, 2));
});

test('every dirty byte of any range sequence is covered by a box, pitch padding excluded', (t) => {
  const seed = propertySeed(310);
  t.diagnostic(`fast-check seed ${seed}`);
  fc.assert(
    fc.property(
      fc.record({ w: fc.integer({ min: 1, max: 40 }), h: fc.integer({ min: 1, max: 12 }), d: fc.integer({ min: 1, max: 3 }), bpp: fc.constantFrom(1, 2, 4), rp: fc.nat(5), sp: fc.nat(20) }),
      fc.array(fc.tuple(fc.nat(4000), fc.integer({ min: 1, max: 600 })), { minLength: 1, maxLength: 8 }),
      ({ w, h, d, bpp, rp, sp }, ranges) => {
        const s = surface(w, h, d, bpp, rp, sp);
        for (const [a, n] of ranges) s.dirtyRangeAdd(a, a + n);
        for (const [a, n] of ranges) {
          for (let byte = a; byte < Math.min(a + n, s.size); byte++) {
            const z = Math.floor(byte / s.imagePitch);
            const y = Math.floor((byte - z * s.imagePitch) / s.rowPitch);
            const xb = byte - z * s.imagePitch - y * s.rowPitch;
            if (y >= h || xb >= w * bpp) continue; // padding
            const x = Math.floor(xb / bpp);
            const hit = s.dirtyBoxes().some((b) => x >= b.x && x < b.x + b.w && y >= b.y && y < b.y + b.h && z >= b.z && z < b.z + b.d);
            assert.ok(hit, `byte ${byte} (x ${x}, y ${y}, z ${z}) not covered by ${JSON.stringify(s.dirtyBoxes())}`);
          }
        }
      },
    ),
    { seed, numRuns: 300 },
  );
});
