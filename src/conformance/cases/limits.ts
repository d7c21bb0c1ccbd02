// §9 limits: each announced limit holds exactly, per session and device-wide, and the caps on
// connections and idle sessions.
import { applied, check, expectClose, expectError, expectFatal, NotApplicable, rejected, same, type Case, type Ctx } from '../case.js';
import type { WireClient } from '../client.js';

/** Largest device allocation a case makes to reach a limit (BOs are zero-filled, so cheap). */
const ALLOCATION_BUDGET = 4 * 1024 * 1024 * 1024;
/** Most frames a case sends to reach a count limit. */
const COUNT_BUDGET = 20_000;

/** Defines BOs from `first` until the device answers an error; returns how many it took and the error. */
async function defineUntilRefused(c: WireClient, first: number, size: number, max: number): Promise<{ defined: number; code: string; message: string }> {
  for (let i = 0; i < max; i++) c.cmd({ op: 'defineBo', bo: first + i, size });
  const fence = c.cmd({ op: 'fence', fence: 1 });
  const m = await c.next(10_000);
  if (m.op === 'signaled') return { defined: max, code: '', message: '' };
  check(m.op === 'error', `expected an error or the fence, got ${m.op}`);
  for (;;) {
    const next = await c.next(10_000);
    if (next.op === 'signaled' && next.seq === fence) break;
  }
  // Commands took seqs fence − max … fence − 1; the first refused one ends the count.
  return { defined: (m.seq ?? fence) - (fence - max), code: m.code, message: m.message };
}

/**
 * Fills the device with BOs of `size` bytes from as many sessions as it takes (each up to
 * `perSession`) until one is refused; returns how many all sessions defined before, and the code.
 */
async function fillDevice(t: Ctx, size: number, perSession: number, sessions: number): Promise<{ defined: number; code: string }> {
  if (sessions + 2 > (t.welcome.maxSessions ?? Infinity)) throw new NotApplicable(`needs ${sessions} sessions`);
  await settled(t, await t.session(), 1);
  let defined = 0;
  for (let i = 0; i < sessions; i++) {
    const r = await defineUntilRefused(await t.session(), 1, size, perSession);
    defined += r.defined;
    if (r.code !== '') return { defined, code: r.code };
  }
  return { defined, code: '' };
}

function need(limit: number | undefined, name: string, max: number): number {
  if (limit === undefined) throw new NotApplicable(`the device does not announce ${name}`);
  if (limit > max) throw new NotApplicable(`${name} ${limit} is too large to reach in a test`);
  return limit;
}

/**
 * Waits until the device's stats show at most `sessions` sessions: the device notices closes
 * of earlier cases' connections asynchronously, and device-wide limits count what they held.
 */
async function settled(t: Ctx, c: WireClient, sessions: number): Promise<void> {
  if (!t.offers('stats')) return new Promise((r) => setTimeout(r, 200));
  for (let i = 0; i < 100; i++) {
    const seq = c.cmd({ op: 'stats' });
    if ((await c.expect('statsData', seq)).sessions <= sessions) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const limitCases: Case[] = [
  {
    id: 'lim.bo-size',
    section: '9.1',
    title: 'a BO of 0 bytes or more than maxBoSize: limit; exactly maxBoSize is accepted',
    async run(t) {
      const c = await t.session();
      const { maxBoSize, maxSessionBytes, maxTotalBytes } = t.welcome;
      await rejected(c, { op: 'defineBo', bo: 1, size: 0 }, 'limit');
      if (maxBoSize < 0xffff_ffff) await rejected(c, { op: 'defineBo', bo: 1, size: maxBoSize + 1 }, 'limit');
      if (maxBoSize <= Math.min(maxSessionBytes ?? Infinity, maxTotalBytes, ALLOCATION_BUDGET)) await applied(c, { op: 'defineBo', bo: 1, size: maxBoSize });
    },
  },
  {
    id: 'lim.ranges',
    section: '9.1',
    title: 'a write of exactly maxRanges ranges is applied; one more is a limit error',
    async run(t) {
      const n = t.welcome.maxRanges;
      if ((n + 1) * 8 >= t.welcome.maxMessageSize) throw new NotApplicable(`maxRanges ${n} does not fit one message`);
      const c = await t.session();
      await applied(c, { op: 'defineBo', bo: 1, size: 64 }, { op: 'write', bo: 1, ranges: Array.from({ length: n }, (_, i) => [i % 64, Uint8Array.of(1)]) });
      await rejected(c, { op: 'write', bo: 1, ranges: Array.from({ length: n + 1 }, () => [0, Uint8Array.of(2)]) }, 'limit');
    },
  },
  {
    id: 'lim.session-bos',
    section: '9.2',
    title: 'one session gets exactly maxSessionBos BOs; another session can still define one',
    async run(t) {
      const n = need(t.welcome.maxSessionBos, 'maxSessionBos', COUNT_BUDGET);
      if (n >= t.welcome.maxBos) throw new NotApplicable(`maxSessionBos ${n} is not below maxBos ${t.welcome.maxBos}`);
      const c = await t.session();
      const r = await defineUntilRefused(c, 1, 1, n + 1);
      same([r.defined, r.code], [n, 'limit'], `BOs defined before the refusal (${r.message})`);
      const other = await t.session();
      await applied(other, { op: 'defineBo', bo: 1, size: 1 });
    },
  },
  {
    id: 'lim.session-bytes',
    section: '9.2',
    title: 'one session\'s BOs hold at most maxSessionBytes; another session can still define one',
    async run(t) {
      const share = need(t.welcome.maxSessionBytes, 'maxSessionBytes', ALLOCATION_BUDGET);
      if (share >= t.welcome.maxTotalBytes) throw new NotApplicable(`maxSessionBytes ${share} is not below maxTotalBytes`);
      const size = Math.min(t.welcome.maxBoSize, share);
      const count = Math.floor(share / size);
      const c = await t.session();
      const r = await defineUntilRefused(c, 1, size, count + 1);
      same([r.defined, r.code], [count, 'limit'], `BOs of ${size} bytes defined before the refusal (${r.message})`);
      const rest = share - count * size;
      if (rest > 0) await applied(c, { op: 'defineBo', bo: 1_000_000, size: rest });
      const other = await t.session();
      await applied(other, { op: 'defineBo', bo: 1, size: Math.min(size, t.welcome.maxTotalBytes - share) });
    },
  },
  {
    id: 'lim.session-surfaces',
    section: '9.2',
    title: 'one session gets exactly maxSessionSurfaces surfaces',
    needs: ['surfaces'],
    async run(t) {
      const n = need(t.welcome.maxSessionSurfaces, 'maxSessionSurfaces', COUNT_BUDGET);
      const c = await t.session();
      c.cmd({ op: 'defineBo', bo: 1, size: 1 });
      const s = { op: 'defineSurface', bo: 1, offset: 0, width: 1, height: 1, depth: 1, bytesPerPixel: 1, rowPitch: 1, imagePitch: 1 };
      for (let i = 1; i <= n; i++) c.cmd({ ...s, sid: i });
      same((await c.fence()).ok, true, `${n} surfaces defined`);
      await rejected(c, { ...s, sid: n + 1 }, 'limit');
    },
  },
  {
    id: 'lim.device-bytes',
    section: '9.1',
    title: 'all sessions together hold at most maxTotalBytes',
    timeoutMs: 60_000,
    async run(t) {
      const { maxTotalBytes, maxBoSize } = t.welcome;
      need(maxTotalBytes, 'maxTotalBytes', ALLOCATION_BUDGET);
      const share = t.welcome.maxSessionBytes ?? maxTotalBytes;
      const size = Math.min(maxBoSize, share);
      const perSession = Math.floor(share / size);
      const r = await fillDevice(t, size, perSession, Math.ceil(maxTotalBytes / (perSession * size)) + 1);
      const total = r.defined * size;
      same(r.code, 'limit', `refusal after ${total} bytes`);
      check(total <= maxTotalBytes && total + size > maxTotalBytes, `refused a BO of ${size} bytes after ${total} bytes, maxTotalBytes ${maxTotalBytes}`);
    },
  },
  {
    id: 'lim.device-bos',
    section: '9.1',
    title: 'all sessions together have at most maxBos BOs',
    timeoutMs: 60_000,
    async run(t) {
      const maxBos = need(t.welcome.maxBos, 'maxBos', 4 * COUNT_BUDGET);
      const perSession = Math.min(t.welcome.maxSessionBos ?? maxBos, maxBos);
      const r = await fillDevice(t, 1, perSession, Math.ceil(maxBos / perSession) + 1);
      same([r.defined, r.code], [maxBos, 'limit'], 'BOs defined by all sessions before the refusal, and its code');
    },
  },
  {
    id: 'lim.sessions',
    section: '9.2',
    title: 'a connection beyond maxSessions gets error busy and close 1013; one frees a place when it closes',
    timeoutMs: 60_000,
    async run(t) {
      const max = need(t.welcome.maxSessions, 'maxSessions', 1000);
      const probe = await t.session();
      let open = 1;
      if (t.offers('stats')) {
        const seq = probe.cmd({ op: 'stats' });
        open = (await probe.expect('statsData', seq)).sessions;
      }
      const clients: WireClient[] = [probe];
      for (let i = open; i < max; i++) clients.push(await t.connect());
      const over = await t.connect();
      await expectFatal(over, 'busy', 1013);
      await clients.pop()!.close();
      await settled(t, probe, max - 1);
      await t.session();
    },
  },
  {
    id: 'lim.idle',
    section: '9.2',
    title: 'a session silent for idleTimeout ms gets error idle and close 1001; one that pings stays',
    timeoutMs: 60_000,
    async run(t) {
      const idle = need(t.welcome.idleTimeout, 'idleTimeout', 10_000);
      if (idle === 0) throw new NotApplicable('the device has no idle timeout');
      const quiet = await t.session();
      const busy = await t.session();
      const start = performance.now();
      const pinger = setInterval(() => busy.cmd({ op: 'ping' }), idle / 4);
      try {
        await expectError(quiet, 'idle', undefined);
        const waited = performance.now() - start;
        check(waited >= idle * 0.9, `closed after ${waited.toFixed(0)} ms, idleTimeout ${idle}`);
        await expectClose(quiet, 1001, 'idle');
        check(!busy.isClosed, 'a session that pings was closed too');
      } finally {
        clearInterval(pinger);
      }
    },
  },
];
