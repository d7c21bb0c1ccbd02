// §1 transport and §3 handshake: how a connection becomes a session, and how it is refused.
import { request } from 'node:http';
import { FEATURES, U32_MAX } from '../../../protocol/index.js';
import { check, expectClose, expectFatal, NotApplicable, same, type Case, type Ctx, type Need } from '../case.js';

const WELCOME_UINTS = ['maxBos', 'maxBoSize', 'maxTotalBytes', 'maxSurfaces', 'maxMessageSize', 'maxRanges'] as const;
const SESSION_LIMITS = ['maxSessions', 'maxSessionBos', 'maxSessionBytes', 'maxSessionSurfaces'] as const;

/** A first frame the device must refuse with error `code` and close `close`. */
function refusedFirst(id: string, title: string, first: (t: Ctx) => object, code: string, close: number, needs?: Need[]): Case {
  return {
    id,
    section: '3',
    title,
    needs,
    async run(t) {
      const c = await t.connect();
      c.send(first(t));
      await expectFatal(c, code, close);
    },
  };
}

export const handshakeCases: Case[] = [
  {
    id: 'tr.http-426',
    section: '1',
    title: 'a plain HTTP request is answered 426 Upgrade Required',
    async run(t) {
      const url = new URL(t.url);
      const status = await new Promise<number | undefined>((resolve, reject) => {
        const req = request({ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port), path: '/', timeout: 5000 }, (res) => {
          res.resume();
          resolve(res.statusCode);
        });
        req.on('timeout', () => req.destroy(new Error('no HTTP answer within 5 s')));
        req.on('error', reject);
        req.end();
      });
      same(status, 426, 'HTTP status');
    },
  },
  {
    id: 'hs.welcome',
    section: '6.2',
    title: 'welcome carries version 1, a session id, the page size, features and every limit',
    async run(t) {
      const w = t.welcome;
      same(w.version, 1, 'version');
      check(Number.isInteger(w.session) && w.session >= 0 && w.session <= U32_MAX, `session ${w.session} is not a u32`);
      check(w.pageSize >= 1, `pageSize ${w.pageSize}`);
      for (const key of WELCOME_UINTS) check(w[key] >= 1, `${key} is ${w[key]}, must be ≥ 1`);
      check(w.maxMessageSize >= 1024, `maxMessageSize ${w.maxMessageSize} < 1024`);
      check(w.maxBoSize <= U32_MAX, `maxBoSize ${w.maxBoSize} > 2^32−1`);
      check(new Set(w.features).size === w.features.length, `features repeat a name: ${w.features.join(', ')}`);
      for (const key of SESSION_LIMITS) check(w[key] === undefined || w[key] >= 1, `${key} is ${w[key]}, must be ≥ 1 when present`);
      const known = [...FEATURES, 'control'];
      const unknown = w.features.filter((f) => !known.includes(f));
      check(unknown.length === 0, `features not in version 1: ${unknown.join(', ')}`);
    },
  },
  {
    id: 'hs.version-highest',
    section: '3',
    title: 'the device picks the highest version both sides speak',
    async run(t) {
      const c = await t.session({ min: 1, max: 9 });
      same(c.welcome!.version, 1, 'negotiated version for a driver speaking 1..9');
    },
  },
  refusedFirst('hs.version-none', 'no common version: error version_unsupported, close 1002', (t) => ({ op: 'hello', min: 2, max: 3, token: t.token }), 'version_unsupported', 1002),
  refusedFirst('hs.not-hello-first', 'a first frame other than hello: error protocol, close 1002', () => ({ op: 'stats', seq: 1 }), 'protocol', 1002),
  refusedFirst('hs.invalid-hello', 'a hello with a field of the wrong type: error protocol, close 1002', (t) => ({ op: 'hello', min: 'one', max: 1, token: t.token }), 'protocol', 1002),
  {
    id: 'hs.second-hello',
    section: '3',
    title: 'a second hello: error protocol, close 1002',
    async run(t) {
      const c = await t.session();
      c.send({ op: 'hello', min: 1, max: 1, token: t.token });
      await expectFatal(c, 'protocol', 1002);
    },
  },
  refusedFirst('hs.token-missing', 'a device with a token refuses a hello without one: bad_token, close 1008', () => ({ op: 'hello', min: 1, max: 1 }), 'bad_token', 1008, ['token']),
  {
    id: 'hs.token-wrong',
    section: '3',
    title: 'a wrong token (also one of the right length): bad_token, close 1008',
    needs: ['token'],
    async run(t) {
      const wrong = t.token!.length > 0 ? `${t.token!.slice(0, -1)}${t.token!.endsWith('x') ? 'y' : 'x'}` : 'x';
      for (const token of [wrong, `${t.token}!`]) {
        const c = await t.connect();
        c.send({ op: 'hello', min: 1, max: 1, token });
        await expectFatal(c, 'bad_token', 1008);
      }
    },
  },
  refusedFirst(
    'hs.token-first',
    'the token is checked before anything else: a wrong token with a bad version and a bad field gets bad_token',
    (t) => ({ op: 'hello', min: 7, max: 8, name: 5, token: `${t.token}-not` }),
    'bad_token',
    1008,
    ['token'],
  ),
  {
    id: 'hs.control-credential',
    section: '3',
    title: 'role control needs the control token: the driver token or none is refused (forbidden without control sessions)',
    async run(t) {
      const control = t.welcome.features.includes('control');
      for (const token of [t.token, undefined]) {
        const c = await t.connect();
        c.send({ op: 'hello', min: 1, max: 1, role: 'control', token });
        await expectFatal(c, control ? 'bad_token' : 'forbidden', 1008);
      }
    },
  },
  {
    id: 'hs.control',
    section: '3',
    title: 'with the control token, role control gets a welcome that announces control',
    needs: ['control'],
    async run(t) {
      if (t.controlToken === undefined) throw new NotApplicable('no --control-token given');
      const c = await t.session({ role: 'control', token: t.controlToken });
      check(c.welcome!.features.includes('control'), 'control welcome does not announce control');
    },
  },
  {
    id: 'hs.session-ids',
    section: '3',
    title: 'every session gets its own id',
    async run(t) {
      const ids = [];
      for (let i = 0; i < 4; i++) ids.push((await t.session()).welcome!.session);
      same(new Set(ids).size, ids.length, `distinct ids among ${ids.join(', ')}`);
    },
  },
  {
    id: 'hs.hello-timeout',
    section: '3',
    title: 'a connection that sends no hello is closed with protocol, 1002 (within 15 s)',
    timeoutMs: 20_000,
    async run(t) {
      const c = await t.connect();
      const e = await c.next(15_000);
      same([e.op, (e as { code?: string }).code], ['error', 'protocol'], 'error for a silent connection');
      await expectClose(c, 1002, 'protocol');
    },
  },
];
