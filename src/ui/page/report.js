// @ts-check
// The report: the same views, fed once from the data the report file carries
// inline (src/ui/report-writer.ts ReportData).

(() => {
  document.body.classList.add('report');
  const el = document.getElementById('run-data');
  /** @type {import('../report-writer.js').ReportData} */
  const data = JSON.parse(el?.textContent ?? 'null');
  const views = createViews({ live: false, maxRows: Infinity, chartIntervalMs: 0 });
  views.setRun(data.run);
  views.addRows(data.series);
  views.setPageMaps(
    data.maps.map((m) => Uint8Array.from(m.states, (c) => c.charCodeAt(0) - 48)),
    data.maps.map((m) => Uint32Array.from(m.heat)),
  );
  views.setStatus(data.status, null);
  document.title = `vgpu-dirty report: ${data.run.settings.strategy}, ${data.status.frame} frames, ${new Date(data.run.startedAt).toLocaleString()}`;
  /** @type {any} */ (window).vgpuReport = { views, rows: views.rowCount() };
})();
