// §6.2 features: a device that does not announce a feature answers its ops with unknown_op and
// treats its fields as unknown keys.
import { FEATURES, OP_FEATURE } from '../../../protocol/index.js';
import { applied, expectError, NotApplicable, readBytes, same, type Case } from '../case.js';

/** One frame of each optional op (fields valid, ids unknown). */
const SAMPLE: Record<string, Record<string, unknown>> = {
  defineSurface: { bo: 1, sid: 1, offset: 0, width: 1, height: 1, depth: 1, bytesPerPixel: 1, rowPitch: 1, imagePitch: 1 },
  destroySurface: { sid: 1 },
  writeSurface: { sid: 1, boxes: [] },
  gpuWrite: { bo: 1, ranges: [] },
  digest: { bo: 1, offset: 0, length: 0 },
  stats: {},
  writeSpans: { bo: 1, spans: new Uint8Array(0), data: new Uint8Array(0) },
};

export const featureCases: Case[] = [
  {
    id: 'feat.unannounced',
    section: '6.2',
    title: 'ops of features not announced are answered unknown_op; seen and fence of such features are ignored',
    async run(t) {
      const missing = FEATURES.filter((f) => !t.offers(f));
      if (missing.length === 0) throw new NotApplicable('the device announces every feature');
      const c = await t.session();
      await applied(c, { op: 'defineBo', bo: 1, size: 16 });
      for (const [op, feature] of Object.entries(OP_FEATURE)) {
        if (t.offers(feature)) continue;
        const seq = c.cmd({ op, ...SAMPLE[op] });
        await expectError(c, 'unknown_op', seq);
      }
      await c.fence();
      if (!t.offers('fencedWrite')) {
        c.cmd({ op: 'write', bo: 1, ranges: [[0, Uint8Array.of(1)]], fence: 500 });
        const s = await c.fence(501);
        same([s.fence, s.ok], [501, true], 'the only signal after a write carrying a fence');
      }
      if (!t.offers('seen')) {
        await applied(c, { op: 'write', bo: 1, ranges: [[0, Uint8Array.of(2)]], seen: 0 });
        same((await c.fence(600, { seen: 1 })).ok, true, 'a fence carrying seen');
        same(await readBytes(c, 1, 0, 1), Uint8Array.of(2), 'a write carrying seen');
      }
    },
  },
];
