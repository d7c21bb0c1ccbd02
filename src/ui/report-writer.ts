import { writeFileSync } from 'node:fs';
import { type Asset, loadAssets } from './assets.js';
import type { FrameSampler } from './frame-sampler.js';

/** What the report page (src/ui/page/report.js) reads from its inline data. */
export interface ReportData {
  run: NonNullable<FrameSampler['info']>;
  status: FrameSampler['status'];
  series: ReturnType<NonNullable<FrameSampler['series']>['all']>;
  /** Final page states (PAGE_* digits, one per page) and heat of every BO. */
  maps: Array<{ states: string; heat: number[] }>;
}

/** The page may load nothing from anywhere: every byte it needs is inside the file. */
export const REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";

/**
 * The report of a run: the dashboard page with its styles, uPlot and its
 * scripts inlined, the live client replaced by report.js, and the run's data
 * (settings, summary, the whole time series, final page maps) inlined as
 * JSON. One file that opens offline, anywhere, later.
 */
export function renderReport(sampler: FrameSampler, assets: Map<string, Asset> = loadAssets()): string {
  if (sampler.info === null || sampler.series === null) throw new Error('no run to report: the main job never started');
  const states = sampler.pageStates();
  const data: ReportData = {
    run: sampler.info,
    status: sampler.status,
    series: sampler.series.all(),
    maps: sampler.maps.map((m, i) => ({ states: states[i]!.join(''), heat: Array.from(m.heat) })),
  };
  const text = (path: string) => {
    const a = assets.get(path);
    if (a === undefined) throw new Error(`the dashboard page has no file ${path}`);
    return a.body.toString('utf8');
  };
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  return text('/')
    .replace('<head>', `<head>\n<meta http-equiv="Content-Security-Policy" content="${REPORT_CSP}">`)
    .replace(/<link rel="stylesheet" href="([^"]+)">/g, (_, href: string) => `<style>\n${inlineSafe(text(`/${href}`), href)}\n</style>`)
    .replace(/<script src="([^"]+)"><\/script>/g, (_, src: string) =>
      src === 'live.js'
        ? `<script type="application/json" id="run-data">${json}</script>\n<script>\n${inlineSafe(text('/report.js'), 'report.js')}\n</script>`
        : `<script>\n${inlineSafe(text(`/${src}`), src)}\n</script>`);
}

/** Write the report of the sampled run to `file`. */
export function writeReport(file: string, sampler: FrameSampler): void {
  writeFileSync(file, renderReport(sampler));
}

/** Inline text must not end its element early: refuse rather than silently corrupt the page. */
export function inlineSafe(text: string, name: string): string {
  if (/<\/(script|style)|<!--/i.test(text)) throw new Error(`${name} cannot be inlined: it contains '</script', '</style' or '<!--'`);
  return text;
}
