import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameSampler, loadAssets, renderReport, type ReportData } from '../../src/ui/index.js';
import { runMainJob } from '../../src/index.js';

test('the report is one self-contained file: styles and scripts inline, data inline and escaped, nothing fetched', async () => {
  const sampler = new FrameSampler();
  assert.throws(() => renderReport(sampler), /never started/);
  const report = await runMainJob({ frames: 30, hz: 0, verifyEvery: 0, observer: sampler });
  // A value that would end the data's script element if it were not escaped.
  sampler.info!.settings.device = 'ws://x/</script><script>alert(1)</script>';
  const html = renderReport(sampler);
  assert.doesNotMatch(html, /<(script|link|img)[^>]+(src|href)="(?!data:)/i, 'nothing loaded by reference');
  assert.doesNotMatch(html, /url\(\s*['"]?https?:/i, 'no style loads from another host (uPlot\'s licence comment names its home, which is fine)');
  assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'/);
  const scripts = html.match(/<script\b/g) ?? [];
  assert.equal(scripts.length, 4, 'uPlot, views.js, the data, report.js');
  const data = JSON.parse(/<script type="application\/json" id="run-data">(.*?)<\/script>/s.exec(html)![1]!) as ReportData;
  assert.equal(data.run.settings.device, 'ws://x/</script><script>alert(1)</script>');
  assert.equal(data.series.names[0], 'frame');
  assert.deepEqual(data.series.values[0], Array.from({ length: 30 }, (_, i) => i));
  assert.equal(data.status.summary?.pagesSent, report.pagesSent);
  assert.equal(data.maps.length, 2);
  assert.equal(data.maps[0]!.states.length, 2025);
  assert.match(data.maps[0]!.states, /^0+$/, 'all clean at the end');
  assert.ok(data.maps[1]!.heat.some((h) => h > 0));
  assert.ok(html.includes(loadAssets().get('/vendor/uPlot.iife.min.js')!.body.toString('utf8').slice(0, 200)), 'uPlot inlined');
});
