import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import WebSocket from 'ws';
import { runMainJob } from '../../src/index.js';
import { decodeFrame, encodeFrame, FrameSampler, NodeViewer, PAGE_CLEAN, type Part, startDashboard, UpdateChannel, type ViewerSocket } from '../../src/ui/index.js';

/** GET (or another method) with explicit headers; resolves status and body. */
function get(url: string, opts: { method?: string; host?: string } = {}): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: opts.method ?? 'GET', headers: opts.host ? { host: opts.host } : {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('frames: a header and aligned parts (one piece or several), decoded back exactly', () => {
  const parts: Part[] = [
    ['a', new Uint8Array([1, 2, 3])], ['b', new Uint8Array(Uint32Array.of(7, 8).buffer)], ['empty', new Uint8Array(0)],
    ['runs', [new Uint8Array([4, 5]), new Uint8Array(0), new Uint8Array([6])]],
  ];
  const big = { type: 'update', note: 'x'.repeat(1000) };
  const f = Buffer.concat(encodeFrame(big, parts));
  const d = decodeFrame(f);
  assert.deepEqual(Array.from(d.part('runs')), [4, 5, 6]);
  assert.equal(d.header['note'], big.note);
  assert.deepEqual(Array.from(d.part('a')), [1, 2, 3]);
  const b = d.part('b');
  assert.equal(b.byteOffset % 4, 0, 'viewable as Uint32Array');
  assert.deepEqual(Array.from(new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + 8))), [7, 8]);
  assert.equal(d.part('empty').length, 0);
  assert.throws(() => d.part('missing'), RangeError);
  assert.throws(() => decodeFrame(new Uint8Array([200, 0, 0, 0, 1])), RangeError);
});

test('the server: only its files, only GET/HEAD, only under its own host name; upgrades only to /updates from its own page', async () => {
  const d = await startDashboard({ port: 0 });
  try {
    const root = await get(d.url);
    assert.equal(root.status, 200);
    assert.match(root.body, /<canvas id="fb"/);
    assert.match(String(root.headers['content-security-policy']), /default-src 'self'/);
    for (const path of ['views.js', 'live.js', 'dashboard.css', 'vendor/uPlot.iife.min.js', 'vendor/uPlot.min.css']) {
      assert.equal((await get(d.url + path)).status, 200, path);
    }
    assert.equal((await get(`${d.url}../package.json`)).status, 404);
    assert.equal((await get(`${d.url}%2e%2e/package.json`)).status, 404);
    assert.equal((await get(`${d.url}src/ui/page/index.html`)).status, 404);
    assert.equal((await get(d.url, { method: 'POST' })).status, 405);
    const head = await get(d.url, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal((await get(d.url, { host: 'attacker.example:80' })).status, 403, 'a rebound DNS name is refused');
    const refused = async (path: string, origin: string) => {
      const ws = new WebSocket(d.url.replace('http', 'ws') + path, { origin });
      const status = await new Promise<number>((resolve) => {
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => resolve(101));
        ws.on('error', () => resolve(-1));
      });
      ws.terminate();
      return status;
    };
    assert.equal(await refused('other', d.url.slice(0, -1)), 403);
    assert.equal(await refused('updates', 'http://attacker.example'), 403);
    assert.equal(await refused('updates', d.url.slice(0, -1)), 101);
  } finally {
    await d.close();
  }
});

test('a run seen through the update channel: run info once, every row in order, page maps, and the device\'s framebuffer at the end', async () => {
  const d = await startDashboard({ port: 0, intervalMs: 50 });
  const viewer = await NodeViewer.connect(d.url);
  let job: import('../../src/index.js').MainJobView | null = null;
  let finalCopy: Uint8Array | undefined;
  try {
    const report = await runMainJob({
      frames: 45, hz: 0, verifyEvery: 30, gpuEvery: 20,
      observer: {
        start: (j) => {
          d.sampler.start(j);
          job = j;
        },
        frame: (f, w) => d.sampler.frame(f, w),
        flush: (f, p) => d.sampler.flush(f, p),
        verified: (v) => d.sampler.verified(v),
        end: async (r) => {
          await d.sampler.end(r);
          finalCopy = job!.device!.session(job!.driver.conn.welcome!.session)?.bo(job!.fb.bo.id);
        },
      },
    });
    assert.equal(report.coherent, true);
    await viewer.until((v) => v.status?.summary != null, 'the final update');
    assert.equal(viewer.run?.bos.length, 2);
    assert.equal(viewer.run?.settings.frames, 45);
    assert.deepEqual(viewer.rows['frame'], Array.from({ length: 45 }, (_, i) => i), 'every frame once, in order');
    assert.equal(viewer.rows['dirtied']!.reduce((a, b) => a! + b!, 0), report.pagesDirtied, 'the rows add up to the summary');
    assert.equal(viewer.rows['sent']!.reduce((a, b) => a! + b!, 0), report.pagesSent);
    assert.equal(viewer.status!.lastVerification?.ok, true);
    assert.equal(viewer.status!.lastVerification?.frames, 45);
    assert.equal(viewer.states[0]!.length, 2025);
    assert.ok(viewer.states.every((s) => s.every((v) => v === PAGE_CLEAN)), 'all clean after the final verification');
    assert.ok(viewer.heat[0]!.some((h) => h > 0));
    assert.ok(finalCopy !== undefined);
    assert.ok(Buffer.from(viewer.image!).equals(finalCopy!), 'the viewer holds the device\'s final framebuffer');
    assert.ok(finalCopy!.some((b) => b === 0xe0), 'including the box the device drew itself');
  } finally {
    await viewer.close();
    await d.close();
  }
});

/** A viewer's socket without a network: it keeps what it is sent; it takes updates, or never, or has a full buffer. */
function fakeViewer(kind: 'takes' | 'stuck' | 'full') {
  const messages: Buffer[] = [];
  let fragments: Uint8Array[] = [];
  const socket = {
    bufferedAmount: kind === 'full' ? 64 << 20 : 0,
    readyState: 1,
    send(data: Uint8Array, opts: { fin?: boolean }, cb?: () => void) {
      fragments.push(data);
      if (opts.fin === false) return;
      messages.push(Buffer.concat(fragments));
      fragments = [];
      if (kind !== 'stuck') setImmediate(() => cb?.());
    },
    on() {
      return socket;
    },
    close() {},
    terminate() {},
  };
  return { socket: socket as unknown as ViewerSocket, messages };
}

test('flow control: a viewer that does not take its update is skipped, not queued for; a full send buffer is skipped; the others go on', async () => {
  const sampler = new FrameSampler();
  const channel = new UpdateChannel(sampler, { intervalMs: 3_600_000, sendTimeoutMs: 100 });
  const takes = fakeViewer('takes');
  const stuck = fakeViewer('stuck');
  const full = fakeViewer('full');
  for (const v of [takes, stuck, full]) channel.addViewer(v.socket);
  let checked = false;
  try {
    await runMainJob({
      frames: 8, hz: 0, verifyEvery: 0,
      observer: {
        start: (j) => sampler.start(j),
        flush: (f, p) => sampler.flush(f, p),
        end: (r) => sampler.end(r),
        frame: async (f, w) => {
          sampler.frame(f, w);
          if (f !== 5) return;
          const t0 = performance.now();
          const first = await channel.publish();
          assert.equal(first.viewers, 2, 'the full one is skipped');
          assert.ok(performance.now() - t0 < 2000, 'publish waits for a stuck viewer only up to its bound');
          const second = await channel.publish();
          assert.equal(second.viewers, 1, 'the stuck one is skipped until it takes what it has');
          assert.deepEqual([takes.messages.length, stuck.messages.length, full.messages.length], [2, 1, 0], 'nothing queued for the others');
          const [a, b] = takes.messages.map((m) => decodeFrame(m).header as { seq: number; rows: { from: number; to: number } });
          assert.equal(b!.seq, second.seq);
          assert.equal(b!.rows.from, a!.rows.to, 'each update starts where the viewer\'s last one ended');
          (full.socket as { bufferedAmount: number }).bufferedAmount = 0;
          assert.equal((await channel.publish()).viewers, 2, 'a drained buffer gets updates again');
          assert.equal(full.messages.length, 1);
          checked = true;
        },
      },
    });
    assert.ok(checked);
  } finally {
    await channel.close();
  }
});
