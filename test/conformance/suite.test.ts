// The project's device against the conformance suite, in process: every case passes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startDevice, type DeviceOptions } from '../../device/index.js';
import { OP_FEATURE } from '../../protocol/index.js';
import { ALL_CASES, formatResult, runConformance, type Report } from '../../src/conformance/index.js';
import { CONTROL_TOKEN, SMALL_DEVICE, TOKEN } from './devices.js';

async function run(options: DeviceOptions, only?: string[]): Promise<Report> {
  const device = await startDevice(options);
  try {
    return await runConformance({ url: device.url, token: TOKEN, controlToken: CONTROL_TOKEN, only });
  } finally {
    await device.close();
  }
}

const lines = (r: Report, status: string): string[] => r.results.filter((x) => x.status === status).map(formatResult);

describe('conformance of the project\'s device', () => {
  it('passes every case; only the cases of a device lacking a feature are N-A (every feature is announced)', async () => {
    const r = await run(SMALL_DEVICE);
    assert.deepEqual(lines(r, 'FAIL'), []);
    assert.deepEqual(r.results.filter((x) => x.status === 'N-A').map((x) => x.id), ['spans.deflate-unannounced', 'feat.unannounced'].sort((a, b) => ALL_CASES.findIndex((c) => c.id === a) - ALL_CASES.findIndex((c) => c.id === b)));
    assert.equal(r.summary.total, ALL_CASES.length);
  });

  it('on ws\'s server (--websocket ws), the alternative kept for comparison: every case passes as well', async () => {
    const r = await run({ ...SMALL_DEVICE, websocket: 'ws' });
    assert.deepEqual(lines(r, 'FAIL'), []);
    assert.equal(r.results.filter((x) => x.status === 'PASS').length, ALL_CASES.length - 2);
  });

  // Limits and backpressure do not depend on features; they ran above.
  const FEATURE_DEPENDENT = ['tr.', 'hs.', 'enc.', 'seq.', 'fence.', 'order.', 'bo.', 'surf.', 'gpu.', 'digest.', 'stats.', 'ping.', 'feat.', 'atom.', 'rb.', 'seen.', 'spans.', 'err.', 'iso.'];

  it('without optional features: their cases are N-A, feat.unannounced passes, the rest passes', async () => {
    const r = await run({ ...SMALL_DEVICE, features: [], controlToken: undefined }, FEATURE_DEPENDENT);
    assert.deepEqual(lines(r, 'FAIL'), []);
    const na = r.results.filter((x) => x.status === 'N-A');
    assert.ok(na.some((x) => x.id === 'digest.pages' && /feature 'digest' not announced/.test(x.detail)));
    assert.ok(na.some((x) => x.id === 'hs.control' && /feature 'control' not announced/.test(x.detail)));
    assert.equal(r.results.find((x) => x.id === 'feat.unannounced')!.status, 'PASS');
    // every case that needs an optional op or field is N-A; none of the core ones are
    for (const c of ALL_CASES.filter((x) => FEATURE_DEPENDENT.some((p) => x.id.startsWith(p)))) {
      const needsOptional = (c.needs ?? []).some((n) => n !== 'token');
      assert.equal(r.results.find((x) => x.id === c.id)!.status === 'N-A', needsOptional, c.id);
    }
    assert.ok(Object.keys(OP_FEATURE).length > 0);
  });

  it('with writeSpans but without deflate: the deflate cases are N-A, an unannounced codec is refused', async () => {
    const r = await run({ ...SMALL_DEVICE, features: ['writeSpans', 'fencedWrite'], controlToken: undefined }, ['spans.']);
    assert.deepEqual(lines(r, 'FAIL'), []);
    assert.deepEqual(r.results.filter((x) => x.status === 'N-A').map((x) => x.id), ['spans.deflate', 'spans.deflate-bad']);
    assert.equal(r.results.find((x) => x.id === 'spans.deflate-unannounced')!.status, 'PASS');
  });
});
