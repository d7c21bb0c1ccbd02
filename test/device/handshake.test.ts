import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startDevice, type Device } from '../../device/index.js';
import { DEFAULT_LIMITS, FEATURES } from '../../protocol/index.js';
import { TestClient } from './client.js';

describe('handshake', () => {
  let device: Device;
  before(async () => {
    device = await startDevice({ token: 'tok', helloTimeout: 300, pageSize: 8192 });
  });
  after(() => device.close());

  it('answers hello with welcome: version, session, page size, features, limits', async () => {
    const c = await TestClient.connect(device.url, { token: 'tok', name: 'h1', min: 1, max: 9 });
    try {
      assert.deepEqual(c.welcome, {
        op: 'welcome', version: 1, session: c.welcome!.session, pageSize: 8192, features: [...FEATURES], ...DEFAULT_LIMITS,
      });
      assert.equal(device.session(c.welcome!.session)?.name, 'h1');
      assert.equal(device.session(c.welcome!.session)?.role, 'driver');
    } finally {
      await c.close();
    }
  });

  async function refused(hello: Record<string, unknown> | Buffer | string, code: string, close: number): Promise<void> {
    const c = await TestClient.connect(device.url, false);
    if (typeof hello === 'string' || Buffer.isBuffer(hello)) c.ws.send(hello);
    else c.send(hello);
    if (close !== 1003) {
      const e = await c.expect('error');
      assert.equal(e.code, code);
      assert.equal(e.seq, undefined);
    }
    const closed = await c.waitClosed();
    assert.equal(closed.code, close);
    assert.match(closed.reason, new RegExp(code === 'text_frame' ? 'text_frame' : code));
  }

  it('closes 1002 when no version is common', () => refused({ op: 'hello', min: 2, max: 3, token: 'tok' }, 'version_unsupported', 1002));
  it('closes 1008 on a missing token', () => refused({ op: 'hello', min: 1, max: 1 }, 'bad_token', 1008));
  it('closes 1008 on a wrong token', () => refused({ op: 'hello', min: 1, max: 1, token: 'tik' }, 'bad_token', 1008));
  it('closes 1008 on role control when the device does not allow it', () =>
    refused({ op: 'hello', min: 1, max: 1, token: 'tok', role: 'control' }, 'forbidden', 1008));
  it('closes 1002 on anything before hello', () => refused({ op: 'stats', seq: 1 }, 'protocol', 1002));
  it('closes 1002 on an invalid hello', () => refused({ op: 'hello', min: 'one', max: 1 }, 'protocol', 1002));
  it('closes 1003 on a text frame', () => refused('{"op":"hello"}', 'text_frame', 1003));
  it('closes 1007 on malformed MessagePack before hello', () => refused(Buffer.from([0xc1]), 'malformed', 1007));

  it('closes 1002 on a second hello', async () => {
    const c = await TestClient.connect(device.url, { token: 'tok' });
    c.send({ op: 'hello', min: 1, max: 1, token: 'tok' });
    assert.equal((await c.expect('error')).code, 'protocol');
    assert.equal((await c.waitClosed()).code, 1002);
  });

  it('closes 1002 when no hello arrives in time', async () => {
    const c = await TestClient.connect(device.url, false);
    const e = await c.expect('error');
    assert.equal(e.code, 'protocol');
    assert.match(e.message, /no hello within 300 ms/);
    assert.equal((await c.waitClosed()).code, 1002);
  });

  it('answers plain HTTP with 426', async () => {
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const port = Number(new URL(device.url).port);
      request({ host: '127.0.0.1', port, path: '/' }, (res) => {
        res.resume();
        resolve(res.statusCode);
      })
        .on('error', reject)
        .end();
    });
    assert.equal(status, 426);
  });

  it('gives every connection its own session id and forgets it on close', async () => {
    const a = await TestClient.connect(device.url, { token: 'tok' });
    const b = await TestClient.connect(device.url, { token: 'tok' });
    assert.notEqual(a.welcome!.session, b.welcome!.session);
    await a.close();
    await b.close();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(device.session(a.welcome!.session), undefined);
    assert.deepEqual(device.sessions(), []);
  });
});
