// The endpoint against strict and hostile peers: RFC 6455 corners, data around a peer's end of
// the connection, closes after violations, codes that never go on the wire.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import type { DeviceSocket } from '../../../device/websocket/socket.js';
import { clientFrame, closeFrame, rawConnect, serverFrames, type RawClient } from './frames.js';
import { closed, Harness } from './harness.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Records a server socket's messages (first byte, length) and releases them. */
function recordMessages(s: DeviceSocket): string[] {
  const got: string[] = [];
  s.on('error', () => {});
  s.on('message', (data, isBinary, release) => {
    got.push(`${isBinary ? 'bin' : 'text'} ${data.length}${data.length > 0 ? ` ${data[0]}` : ''}`);
    release();
  });
  return got;
}

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('websocket endpoint (own) against strict and hostile peers', () => {
  const h = new Harness();
  before(() => h.start(1024));
  after(() => h.stop());

  /** The next connection's server socket, with `pipelined` sent in the request's write. */
  async function open(pipelined?: Buffer): Promise<{ server: Promise<DeviceSocket>; client: RawClient }> {
    const server = new Promise<DeviceSocket>((r) => (h.onSocket = r));
    const client = await rawConnect(h.port, pipelined);
    return { server, client };
  }

  it('accepts non-minimal 16- and 64-bit lengths, zero-length frames and messages, exactly maxPayload across fragments', async () => {
    const frames = [
      clientFrame({ opcode: 2, payload: Buffer.alloc(5, 1), lengthForm: 16 }),
      clientFrame({ opcode: 2, payload: Buffer.alloc(5, 2), lengthForm: 64 }),
      clientFrame({ opcode: 2 }),
      clientFrame({ opcode: 2, fin: false }),
      clientFrame({ opcode: 9, payload: Buffer.from('p') }),
      clientFrame({ opcode: 0, payload: Buffer.alloc(1000, 3), fin: false }),
      clientFrame({ opcode: 0, fin: false }),
      clientFrame({ opcode: 0, payload: Buffer.alloc(24, 3) }),
      closeFrame(1000),
    ];
    const { server, client } = await open();
    const got = recordMessages(await server);
    client.socket.write(Buffer.concat(frames));
    await client.closed;
    assert.deepEqual(got, ['bin 5 1', 'bin 5 2', 'bin 0', 'bin 1024 3']);
    assert.deepEqual(serverFrames(client.received()).map((f) => [f.opcode, f.payload.toString('hex')]), [[0xa, '70'], [8, '03e8']]);
  });

  it('parses frames sent in the same write as the upgrade request; their views stay intact while more connections do the same', async () => {
    const kept: Buffer[] = [];
    h.onSocket = (s) => s.on('message', (data) => kept.push(data)); // never released
    const clients = [];
    for (let i = 0; i < 20; i++) {
      const c = await rawConnect(h.port, clientFrame({ opcode: 2, payload: Buffer.alloc(100, i) }));
      await until(() => kept.length === i + 1, `message ${i}`);
      clients.push(c);
    }
    kept.forEach((d, i) => assert.deepEqual(d, Buffer.alloc(100, i), `message ${i}`));
    for (const c of clients) c.socket.destroy();
  });

  it('delivers text only as valid UTF-8: a character split between fragments is fine', async () => {
    const { server, client } = await open();
    const got = recordMessages(await server);
    client.socket.write(Buffer.concat([clientFrame({ opcode: 1, payload: Buffer.of(0xe2, 0x82), fin: false }), clientFrame({ opcode: 0, payload: Buffer.of(0xac) }), closeFrame(1000)]));
    await client.closed;
    assert.deepEqual(got, ['text 3 226']);
  });

  for (const [how, cut] of [
    ['FIN', (c: RawClient) => c.socket.end()],
    ['a reset', (c: RawClient) => c.socket.resetAndDestroy()],
  ] as const) {
    it(`delivers every message a paused peer sent before ${how}, then 'close'`, async () => {
      const { server: pending, client } = await open();
      const server = await pending;
      const events: string[] = [];
      server.on('error', () => {});
      server.on('message', (data, _b, release) => {
        const first = data[0];
        events.push(`message ${first}`);
        release();
        if (first === 1) server.pause();
      });
      server.on('close', () => events.push('close'));
      // 1 and 2 in one read (2 waits in the endpoint), 3 after the pause (it waits in the socket).
      const frame = (i: number): Buffer => clientFrame({ opcode: 2, payload: Buffer.alloc(10, i) });
      client.socket.write(Buffer.concat([frame(1), frame(2)]));
      await until(() => events.length > 0, 'the first message');
      client.socket.write(frame(3));
      await sleep(50);
      cut(client);
      await sleep(100);
      if (how === 'FIN') {
        assert.deepEqual(events, ['message 1'], 'nothing delivered while paused');
        server.resume();
      }
      await until(() => events.includes('close'), "'close'");
      assert.deepEqual(events, ['message 1', 'message 2', 'message 3', 'close']);
    });
  }

  it('while paused it stops reading the socket: TCP pushes back on the client', async () => {
    let rawSocket: Socket | undefined;
    const onUpgrade = (_req: unknown, socket: Socket): void => void (rawSocket = socket);
    h.http.prependListener('upgrade', onUpgrade);
    const { server: pending, client } = await open();
    h.http.off('upgrade', onUpgrade);
    const server = await pending;
    let delivered = 0;
    server.on('message', (_d, _b, release) => {
      delivered++;
      release();
      server.pause();
    });
    // 32 MiB in messages of 1000 bytes (under maxPayload), far beyond what socket buffers hold.
    const frame = clientFrame({ opcode: 2, payload: Buffer.alloc(1000, 5) });
    const burst = Buffer.concat(Array.from({ length: 1024 }, () => frame));
    for (let i = 0; i < 32; i++) client.socket.write(burst); // queued by the client beyond what TCP takes
    await sleep(300);
    const read = rawSocket!.bytesRead;
    assert.equal(delivered, 1, 'nothing delivered while paused');
    assert.ok(read < 4 << 20, `the endpoint read ${read} bytes while paused`);
    assert.ok(client.socket.writableLength > 0, 'the client is pushed back');
    // (A paused endpoint would see the client's FIN only after resuming: it is behind the data.)
    const c = closed(server);
    server.terminate();
    await c;
    client.socket.destroy();
  });

  it("a reset in the middle of a frame: 'close' once with 1006, the error reported", async () => {
    const { server: pending, client } = await open();
    const server = await pending;
    const events: string[] = [];
    server.on('message', () => events.push('message'));
    server.on('error', (e: NodeJS.ErrnoException) => events.push(`error ${e.code}`));
    server.on('close', (code) => events.push(`close ${code}`));
    client.socket.write(clientFrame({ opcode: 2, payload: Buffer.alloc(1000, 1) }).subarray(0, 600));
    await sleep(50);
    client.socket.resetAndDestroy();
    await until(() => events.some((e) => e.startsWith('close')), "'close'");
    await sleep(50);
    assert.deepEqual(events, ['error ECONNRESET', 'close 1006']);
  });

  it('a violation after its own close frame ends the connection at once (no close frame will be read)', async () => {
    const { server: pending, client } = await open();
    const server = await pending;
    server.on('error', () => {});
    const c = closed(server);
    server.close(1001, 'going');
    await until(() => serverFrames(client.received()).length === 1, 'the close frame');
    client.socket.write(clientFrame({ opcode: 2, payload: Buffer.from('x'), key: null }));
    // The socket's own close timeout is 30 s; the bound here is far below it.
    const t0 = Date.now();
    await client.closed;
    assert.ok(Date.now() - t0 < 5000, `closed after ${Date.now() - t0} ms`);
    assert.deepEqual(await c, [1006, '']);
  });
});

for (const impl of ['own', 'ws'] as const) {
  describe(`close codes that never go on the wire (${impl})`, () => {
    const h = new Harness(impl);
    before(() => h.start());
    after(() => h.stop());

    for (const code of [1005, 1006, 1015]) {
      it(`close(${code}) sends a close frame without a code`, async () => {
        const { server, client } = await h.connect();
        const clientClosed = new Promise<[number, string]>((r) => client.once('close', (c, reason) => r([c, reason.toString()])));
        server.close(code, 'reason');
        assert.deepEqual(await clientClosed, [1005, ''], 'ws reports 1005 for a close frame without a code');
        await closed(server);
      });
    }
  });
}
