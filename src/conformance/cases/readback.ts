// §6.7 readback bounds: every span inside the BO, at most maxRanges spans, a reply that fits.
import { applied, expectError, NotApplicable, readBytes, rejected, same, type Case } from '../case.js';

/** Reply framing the spec budgets for: 64 bytes per message, 16 per span. */
const REPLY_BYTES = 64;
const SPAN_BYTES = 16;

export const readbackCases: Case[] = [
  {
    id: 'rb.bounds',
    section: '6.7',
    title: 'spans must lie in the BO (no wrap-around at 2^32); an empty span at the end is fine',
    async run(t) {
      const c = await t.session();
      await applied(c, { op: 'defineBo', bo: 1, size: 100 });
      same((await readBytes(c, 1, 0, 100)).length, 100, 'the whole BO');
      same((await readBytes(c, 1, 100, 0)).length, 0, 'an empty span at the end');
      await rejected(c, { op: 'readback', bo: 1, ranges: [[99, 2]] }, 'out_of_range');
      await rejected(c, { op: 'readback', bo: 1, ranges: [[0xffff_ffff, 1]] }, 'out_of_range');
      await rejected(c, { op: 'readback', bo: 1, ranges: [[1, 0xffff_ffff]] }, 'out_of_range');
      await rejected(c, { op: 'readback', bo: 2, ranges: [[0, 1]] }, 'unknown_bo');
    },
  },
  {
    id: 'rb.max-ranges',
    section: '6.7',
    title: 'maxRanges spans are answered; one more is a limit error',
    async run(t) {
      const c = await t.session();
      const n = t.welcome.maxRanges;
      if ((n + 1) * 4 >= t.welcome.maxMessageSize - REPLY_BYTES) throw new NotApplicable(`maxRanges ${n} does not fit one message`);
      await applied(c, { op: 'defineBo', bo: 1, size: 16 });
      const seq = c.cmd({ op: 'readback', bo: 1, ranges: Array.from({ length: n }, (_, i) => [i % 16, 0]) });
      same((await c.expect('readbackData', seq)).ranges.length, n, 'spans answered');
      await rejected(c, { op: 'readback', bo: 1, ranges: Array.from({ length: n + 1 }, () => [0, 0]) }, 'limit');
    },
  },
  {
    id: 'rb.reply-size',
    section: '6.7',
    title: 'a reply of maxMessageSize − 64 − 16·spans data bytes is answered; one byte more is a limit error',
    async run(t) {
      const { maxMessageSize, maxBoSize, maxSessionBytes } = t.welcome;
      const budget = maxMessageSize - REPLY_BYTES - 2 * SPAN_BYTES;
      const size = budget + 1;
      if (size > maxBoSize || size > (maxSessionBytes ?? Infinity) || maxMessageSize > 256 * 1024 * 1024) {
        throw new NotApplicable(`needs a BO of ${size} bytes (maxBoSize ${maxBoSize}, maxSessionBytes ${maxSessionBytes})`);
      }
      const c = await t.session();
      await applied(c, { op: 'defineBo', bo: 1, size });
      const seq = c.cmd({ op: 'readback', bo: 1, ranges: [[0, budget - 10], [1, 10]] });
      const m = await c.expect('readbackData', seq);
      same(m.ranges.map(([o, d]) => [o, d.length]), [[0, budget - 10], [1, 10]], 'spans of a reply at the bound');
      const over = c.cmd({ op: 'readback', bo: 1, ranges: [[0, budget - 10], [0, 11]] });
      await expectError(c, 'limit', over);
    },
  },
];
