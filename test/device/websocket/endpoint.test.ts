import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { closed, echo, Harness } from './harness.js';
import { clientFrame, closeFrame, rawExchange, serverFrames, UPGRADE_LINES } from './frames.js';

describe('websocket endpoint (own) against the ws client', () => {
  const h = new Harness();
  before(() => h.start());
  after(() => h.stop());

  for (const [name, options] of [
    ['masked', {}],
    ['zero mask key', { generateMask: (m: Buffer) => void m.fill(0) }],
  ] as const) {
    it(`echoes messages of every size, ${name}`, async () => {
      const { server, client } = await h.connect(options);
      echo(server);
      const sizes = [0, 1, 125, 126, 65_535, 65_536, 300_000, 1 << 20];
      const got: Buffer[] = [];
      client.on('message', (d) => got.push(d as Buffer));
      for (const [i, n] of sizes.entries()) client.send(Buffer.alloc(n, i + 1));
      while (got.length < sizes.length) await new Promise((r) => setTimeout(r, 5));
      got.forEach((d, i) => assert.deepEqual(d, Buffer.alloc(sizes[i]!, i + 1), `message ${i} of ${sizes[i]} bytes`));
      const c = closed(server);
      client.close(1000, 'done');
      assert.deepEqual(await c, [1000, 'done']);
    });
  }

  it('joins fragmented sends, with pings between fragments answered by pongs', async () => {
    const { server, client } = await h.connect();
    echo(server);
    const pongs: Buffer[] = [];
    client.on('pong', (d) => pongs.push(d));
    const got = new Promise<Buffer>((r) => client.once('message', (d) => r(d as Buffer)));
    client.send(Buffer.from('frag-'), { fin: false });
    client.ping(Buffer.from('p1'));
    client.send(Buffer.alloc(200_000, 9), { fin: false });
    client.ping(Buffer.from('p2'));
    client.send(Buffer.from('-end'), { fin: true });
    assert.deepEqual(await got, Buffer.concat([Buffer.from('frag-'), Buffer.alloc(200_000, 9), Buffer.from('-end')]));
    assert.deepEqual(pongs.map(String), ['p1', 'p2']);
    client.terminate();
    assert.deepEqual(await closed(server), [1006, '']);
  });

  it('messages kept unreleased stay intact while thousands more arrive (Node never reuses a read\'s buffer)', async () => {
    const { server, client } = await h.connect();
    const kept: [Buffer, () => void][] = [];
    server.on('message', (data, _b, release) => kept.push([data, release]));
    const n = 3000;
    for (let i = 0; i < n; i++) client.send(Buffer.from(`message ${i} `.repeat(4)));
    while (kept.length < n) await new Promise((r) => setTimeout(r, 5));
    kept.forEach(([data], i) => assert.equal(data.toString(), `message ${i} `.repeat(4)));
    for (const [, release] of kept) release();
    client.close();
    await closed(server);
  });

  it('server close: close frame, the client answers, close event once with the client code', async () => {
    const { server, client } = await h.connect();
    let events = 0;
    server.on('close', () => events++);
    const clientClosed = new Promise<[number, string]>((r) => client.once('close', (code, reason) => r([code, reason.toString()])));
    const c = closed(server);
    server.close(4001, 'x'.repeat(200));
    const [code, reason] = await clientClosed;
    assert.equal(code, 4001);
    assert.equal(reason, 'x'.repeat(123), 'reason cut to 123 bytes');
    assert.deepEqual(await c, [4001, 'x'.repeat(123)]);
    server.close(1000, 'again');
    server.terminate();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(events, 1);
    await new Promise<void>((r) => server.send(Buffer.from('late'), (err) => (assert.ok(err instanceof Error), r())));
  });

  it('terminate cuts the connection: the client sees 1006, the server 1006', async () => {
    const { server, client } = await h.connect();
    const clientClosed = new Promise<number>((r) => client.once('close', (code) => r(code)));
    const c = closed(server);
    server.terminate();
    assert.equal(await clientClosed, 1006);
    assert.deepEqual(await c, [1006, '']);
  });

  it('pause stops messages (and reading); resume delivers the rest in order', async () => {
    const { server, client } = await h.connect();
    const got: number[] = [];
    server.on('message', (data, _b, release) => {
      got.push(data[0]!);
      release();
      if (got.length === 2) server.pause();
    });
    for (let i = 0; i < 50; i++) client.send(Buffer.alloc(10_000, i));
    while (got.length < 2) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(got, [0, 1], 'nothing delivered while paused');
    server.resume();
    while (got.length < 50) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => i));
    client.close();
    await closed(server);
  });

  it('send callbacks run once written; bufferedAmount counts what is not', async () => {
    const { server, client } = await h.connect();
    client.pause(); // the client stops reading: the server's writes pile up
    const big = Buffer.alloc(1 << 20, 1);
    let done = 0;
    for (let i = 0; i < 32; i++) server.send(big, () => done++);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(server.bufferedAmount > 0 && done < 32, `buffered ${server.bufferedAmount}, done ${done}`);
    client.resume();
    while (done < 32) await new Promise((r) => setTimeout(r, 5));
    assert.equal(server.bufferedAmount, 0);
    client.terminate();
    await closed(server);
  });

  it('a client that pings and never reads is cut after 60 unwritten pongs', async () => {
    const { server, client } = await h.connect();
    client.pause();
    const c = closed(server);
    const payload = Buffer.alloc(125, 1);
    // Enough pings to fill the socket buffers both ways, then 60 pongs more.
    for (let i = 0; i < 20_000 && client.readyState === WebSocket.OPEN; i++) {
      client.ping(payload);
      if (i % 500 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    assert.equal((await c)[0], 1006);
  });
});

describe('websocket endpoint on the wire', () => {
  const h = new Harness();
  before(() => h.start(1024));
  after(() => h.stop());

  it('accepts an RFC 6455 handshake and answers the RFC example key', async () => {
    h.onSocket = (s) => s.close(1000, '');
    const r = await rawExchange(h.port, UPGRADE_LINES);
    assert.match(r.head, /^HTTP\/1\.1 101 /);
    assert.match(r.head, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=(\r\n|$)/);
    assert.doesNotMatch(r.head, /Sec-WebSocket-Protocol|Sec-WebSocket-Extensions/i);
  });

  it('echoes the first offered subprotocol, ignores extension offers', async () => {
    h.onSocket = (s) => s.close(1000, '');
    const r = await rawExchange(h.port, [...UPGRADE_LINES, 'Sec-WebSocket-Protocol: vgpu, other', 'Sec-WebSocket-Extensions: permessage-deflate']);
    assert.match(r.head, /\r\nSec-WebSocket-Protocol: vgpu(\r\n|$)/);
    assert.doesNotMatch(r.head, /Sec-WebSocket-Extensions/i);
  });

  const refusals: [string, string[], number, RegExp?][] = [
    ['a POST', UPGRADE_LINES.map((l, i) => (i === 0 ? 'POST / HTTP/1.1' : l)), 405],
    ['HTTP/1.0', UPGRADE_LINES.map((l, i) => (i === 0 ? 'GET / HTTP/1.0' : l)), 400],
    ['Upgrade: h2c', UPGRADE_LINES.map((l) => (l.startsWith('Upgrade:') ? 'Upgrade: h2c' : l)), 400],
    ['no key', UPGRADE_LINES.filter((l) => !l.startsWith('Sec-WebSocket-Key')), 400],
    ['a key of 15 bytes', UPGRADE_LINES.map((l) => (l.startsWith('Sec-WebSocket-Key') ? 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j' : l)), 400],
    ['version 8', UPGRADE_LINES.map((l) => (l.startsWith('Sec-WebSocket-Version') ? 'Sec-WebSocket-Version: 8' : l)), 400, /\r\nSec-WebSocket-Version: 13/],
    ['no version', UPGRADE_LINES.filter((l) => !l.startsWith('Sec-WebSocket-Version')), 400, /\r\nSec-WebSocket-Version: 13/],
    ['a malformed subprotocol list', [...UPGRADE_LINES, 'Sec-WebSocket-Protocol: a,,b'], 400],
    ['a duplicated subprotocol', [...UPGRADE_LINES, 'Sec-WebSocket-Protocol: a, a'], 400],
  ];
  for (const [name, lines, status, header] of refusals) {
    it(`refuses ${name} with ${status} and closes the socket`, async () => {
      let accepted = false;
      h.onSocket = () => (accepted = true);
      const r = await rawExchange(h.port, lines);
      assert.match(r.head, new RegExp(`^HTTP/1\\.1 ${status} `));
      if (header) assert.match(r.head, header);
      assert.ok(r.closed, 'socket closed');
      assert.equal(accepted, false);
    });
  }

  const violations: [string, Buffer, number][] = [
    ['an unmasked frame', clientFrame({ opcode: 2, payload: Buffer.from('x'), key: null }), 1002],
    ['RSV2', clientFrame({ opcode: 2, rsv: 2 }), 1002],
    ['a reserved opcode', clientFrame({ opcode: 5 }), 1002],
    ['a fragmented close', clientFrame({ opcode: 8, fin: false }), 1002],
    ['a bad close code', closeFrame(1004), 1002],
    ['a close reason that is not UTF-8', clientFrame({ opcode: 8, payload: Buffer.of(0x03, 0xe8, 0xff) }), 1007],
    ['a message over maxPayload', clientFrame({ opcode: 2, payload: Buffer.alloc(1025) }), 1009],
    ['maxPayload + 1 across fragments', Buffer.concat([clientFrame({ opcode: 2, payload: Buffer.alloc(1000), fin: false }), clientFrame({ opcode: 0, payload: Buffer.alloc(25) })]), 1009],
    ['a text message that is not UTF-8', clientFrame({ opcode: 1, payload: Buffer.of(0xc0, 0xaf) }), 1007],
    ['a text message with a surrogate across fragments', Buffer.concat([clientFrame({ opcode: 1, payload: Buffer.of(0x61, 0xed), fin: false }), clientFrame({ opcode: 0, payload: Buffer.of(0xa0, 0x80) })]), 1007],
    ['a close reason with an overlong encoding', clientFrame({ opcode: 8, payload: Buffer.of(0x03, 0xe8, 0xc0, 0xaf) }), 1007],
    ['a close reason with a surrogate', clientFrame({ opcode: 8, payload: Buffer.of(0x03, 0xe8, 0xed, 0xa0, 0x80) }), 1007],
    ['close code 1005 on the wire', closeFrame(1005), 1002],
    ['close code 1015 on the wire', closeFrame(1015), 1002],
  ];
  for (const [name, frame, code] of violations) {
    it(`closes on ${name} with ${code}`, async () => {
      let closeEvent: [number, string] | undefined;
      h.onSocket = (s) => {
        s.on('error', () => {});
        s.on('close', (c, reason) => (closeEvent = [c, reason]));
      };
      const r = await rawExchange(h.port, UPGRADE_LINES, [frame]);
      const close = serverFrames(r.body).find((f) => f.opcode === 8);
      assert.ok(close !== undefined, 'a close frame');
      assert.equal(close.payload.readUInt16BE(0), code);
      assert.ok(r.closed);
      await new Promise((res) => setTimeout(res, 20));
      // As with ws: after a violation nothing more is read, so no close code came from the client.
      assert.deepEqual(closeEvent, [1006, '']);
    });
  }

  it('answers a client close frame by echoing its code and reason, then ends the connection', async () => {
    let closeEvent: [number, string] | undefined;
    h.onSocket = (s) => s.on('close', (c, reason) => (closeEvent = [c, reason]));
    const r = await rawExchange(h.port, UPGRADE_LINES, [closeFrame(1001, 'bye')]);
    const close = serverFrames(r.body).find((f) => f.opcode === 8);
    assert.equal(close?.payload.readUInt16BE(0), 1001);
    assert.equal(close?.payload.subarray(2).toString(), 'bye', 'the reason echoed, as ws does');
    assert.ok(r.closed);
    await new Promise((res) => setTimeout(res, 20));
    assert.deepEqual(closeEvent, [1001, 'bye']);
  });
});

describe('websocket endpoint lifetime', () => {
  it('keeps nothing alive: a process that serves, closes and ends its server exits by itself', () => {
    const script = fileURLToPath(new URL('./lifetime-child.js', import.meta.url));
    const r = spawnSync(process.execPath, [script], { timeout: 20_000, encoding: 'utf8' });
    assert.equal(r.signal, null, `exited by itself (stderr: ${r.stderr})`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /served 3 connections/);
  });

  for (const impl of ['own', 'ws']) {
    it(`a device (${impl}) closing with connections in the middle of a message keeps nothing alive`, () => {
      const script = fileURLToPath(new URL('./shutdown-child.js', import.meta.url));
      const r = spawnSync(process.execPath, [script, impl], { timeout: 20_000, encoding: 'utf8' });
      assert.equal(r.signal, null, `exited by itself (stderr: ${r.stderr})`);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`closed with ${impl}`));
    });
  }
});
