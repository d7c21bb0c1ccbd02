import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { acceptKey, acceptResponse, checkUpgrade } from '../../../device/websocket/handshake.js';

const GOOD = {
  upgrade: 'websocket',
  connection: 'keep-alive, Upgrade',
  'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
  'sec-websocket-version': '13',
};

function req(headers: Record<string, string | undefined>, method = 'GET', httpVersion = '1.1'): IncomingMessage {
  const [major, minor] = httpVersion.split('.').map(Number);
  return { method, headers, httpVersion, httpVersionMajor: major, httpVersionMinor: minor } as unknown as IncomingMessage;
}

describe('websocket handshake checks', () => {
  it('accepts an RFC 6455 upgrade (Connection with more tokens, Upgrade in any case)', () => {
    assert.deepEqual(checkUpgrade(req({ ...GOOD, upgrade: 'WebSocket' })), { key: GOOD['sec-websocket-key'], protocol: undefined });
  });
  it('computes the RFC 6455 example accept value', () => {
    assert.equal(acceptKey('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    assert.equal(
      acceptResponse({ key: 'dGhlIHNhbXBsZSBub25jZQ==', protocol: 'p' }),
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: p\r\n\r\n',
    );
  });
  it('accepts HTTP versions after 1.1', () => {
    assert.ok('key' in checkUpgrade(req(GOOD, 'GET', '1.2')));
  });
  it('echoes the first offered subprotocol', () => {
    assert.deepEqual(checkUpgrade(req({ ...GOOD, 'sec-websocket-protocol': 'b, a' })), { key: GOOD['sec-websocket-key'], protocol: 'b' });
  });
  const refused: [string, IncomingMessage, number][] = [
    ['a POST', req(GOOD, 'POST'), 405],
    ['HTTP/1.0', req(GOOD, 'GET', '1.0'), 400],
    ['no Upgrade', req({ ...GOOD, upgrade: undefined }), 400],
    ['Connection without upgrade', req({ ...GOOD, connection: 'keep-alive' }), 400],
    ['Connection: upgraded (not the token)', req({ ...GOOD, connection: 'upgraded' }), 400],
    ['a key of 17 bytes', req({ ...GOOD, 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZTE=' }), 400],
    ['a key that is not base64', req({ ...GOOD, 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ!=' }), 400],
    ['version 12', req({ ...GOOD, 'sec-websocket-version': '12' }), 400],
    ['a subprotocol with a space', req({ ...GOOD, 'sec-websocket-protocol': 'a b' }), 400],
  ];
  for (const [name, r, status] of refused) {
    it(`refuses ${name} with ${status}`, () => {
      const v = checkUpgrade(r);
      assert.ok('status' in v, 'refused');
      assert.equal(v.status, status);
    });
  }
});
