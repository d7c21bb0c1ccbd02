import { writeFileSync } from 'node:fs';
import { loadAssets } from '../ui/assets.js';
import { inlineSafe, REPORT_CSP } from '../ui/report-writer.js';
import { COMPARE_COLUMNS, type Comparison } from './compare.js';

/** Per-frame charts of the report: the series key of ReplayFrameSeries, the title, the scale. */
const CHARTS: ReadonlyArray<{ key: 'bytesOnWire' | 'pagesSent' | 'faults' | 'fenceMs'; title: string; scale: number }> = [
  { key: 'bytesOnWire', title: 'KiB on the wire per frame', scale: 1 / 1024 },
  { key: 'pagesSent', title: 'pages sent per frame', scale: 1 },
  { key: 'faults', title: 'faults per frame', scale: 1 },
  { key: 'fenceMs', title: 'fence latency, ms (varies run to run)', scale: 1 },
];

/** Line colours per strategy, in order. */
const COLOURS = ['#ffb300', '#29b6f6', '#76ff03', '#e040fb', '#ff7043', '#26a69a'];

/**
 * The comparison as one self-contained HTML file: the dashboard's styles and
 * uPlot inlined as the run report has them (src/ui/report-writer.ts, same
 * content policy: the page loads nothing), the table, and per-frame charts
 * with one line per strategy. The replays must have kept per-frame figures
 * (ReplayOptions.perFrame).
 */
export function renderComparison(c: Comparison): string {
  const assets = loadAssets();
  const text = (path: string) => {
    const a = assets.get(path);
    if (a === undefined) throw new Error(`the dashboard page has no file ${path}`);
    return inlineSafe(a.body.toString('utf8'), path);
  };
  const charts = CHARTS.map((ch) => ({
    title: ch.title,
    series: c.results.map((r, i) => ({
      label: r.strategy,
      stroke: COLOURS[i % COLOURS.length],
      values: (r.perFrame?.[ch.key] ?? []).map((v) => (Number.isFinite(v) ? v * ch.scale : null)),
    })),
  }));
  const json = JSON.stringify({ charts }).replace(/</g, '\\u003c');
  const head = COMPARE_COLUMNS.map((col) => `<th>${escape(col.title)}</th>`).join('');
  const rows = c.results.map((r) => `<tr class="${r.coherent ? '' : 'bad'}">${COMPARE_COLUMNS.map((col) => `<td>${escape(col.cell(r))}</td>`).join('')}</tr>`).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${REPORT_CSP}">
<title>vgpu-dirty compare: ${escape(c.trace.start.description)}</title>
<style>
${text('/vendor/uPlot.min.css')}
</style>
<style>
${text('/dashboard.css')}
th { text-align: right; padding: 2px 10px 2px 0; color: var(--muted); font-weight: 600; }
td { text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.bad td { color: var(--bad); }
</style>
</head>
<body class="report">
<header>
  <h1>vgpu-dirty compare</h1>
  <span class="stat">${escape(c.source)}: ${escape(c.trace.start.description)}</span>
  <span class="stat">${c.trace.frames} frames, ${c.trace.accesses} accesses, ${c.trace.start.cpus} CPUs, ${c.trace.start.processes} processes</span>
</header>
<main>
  <section class="panel wide">
    <h2>Strategies on the same trace</h2>
    <table id="comparison"><thead><tr>${head}</tr></thead><tbody>
${rows}
    </tbody></table>
    <p class="note">Counts (bytes, pages, faults, switches) are the same on every replay of this trace; scan, CPU and fence times vary.</p>
  </section>
  <section class="panel wide">
    <h2>Per frame</h2>
    <div id="charts"></div>
  </section>
</main>
<script type="application/json" id="compare-data">${json}</script>
<script>
${text('/vendor/uPlot.iife.min.js')}
</script>
<script>
${inlineSafe(PAGE_SCRIPT, 'the comparison script')}
</script>
</body>
</html>
`;
}

export function writeComparison(file: string, c: Comparison): void {
  writeFileSync(file, renderComparison(c));
}

/** Draws the charts from the inline data (uPlot is a global of the page). */
const PAGE_SCRIPT = `(() => {
  const data = JSON.parse(document.getElementById('compare-data').textContent);
  const host = document.getElementById('charts');
  for (const chart of data.charts) {
    const box = document.createElement('div');
    box.className = 'chart';
    const h = document.createElement('h3');
    h.textContent = chart.title;
    box.append(h);
    host.append(box);
    const frames = Math.max(0, ...chart.series.map((s) => s.values.length));
    const xs = Array.from({ length: frames }, (_, i) => i + 1);
    new uPlot({
      width: Math.max(400, Math.floor(host.clientWidth / 2) - 20), height: 220,
      scales: { x: { time: false } },
      axes: [{ stroke: '#8b98a5', label: 'frame' }, { stroke: '#8b98a5', size: 70 }],
      series: [{ label: 'frame' }, ...chart.series.map((s) => ({ label: s.label, stroke: s.stroke, width: 1.5 }))],
    }, [xs, ...chart.series.map((s) => s.values)], box);
  }
  window.vgpuCompare = { charts: data.charts.length };
})();`;

function escape(s: string): string {
  return s.replace(/[&<>"]/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[ch]!);
}
