import type { Row } from './result.js';

/** Three significant digits, without exponent noise for the magnitudes we print. */
export function fmt(x: number | undefined): string {
  if (x === undefined) return '';
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toString();
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  if (a === 0) return '0';
  return x.toPrecision(3);
}

const HEADER = ['scenario', 'name', 'unit', 'median', 'min', 'max', 'baseline', 'ratio', 'target', ''];

/** The result rows as a Markdown table (readable in a terminal and in docs/performance.md). */
export function renderTable(rows: readonly Row[]): string {
  const cells = rows.map((r) => [
    r.scenario, r.name, r.unit, fmt(r.median), fmt(r.min), fmt(r.max),
    r.baseline === undefined ? '' : `${fmt(r.baseline)} (${r.baselineName})`,
    r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}×`,
    r.target ?? '',
    r.targetMet === undefined ? '' : r.targetMet ? 'met' : 'MISSED',
  ]);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]) => `| ${c.map((s, i) => s.padEnd(widths[i]!)).join(' | ')} |`;
  const numeric = new Set([3, 4, 5, 7]);
  const rule = `|${widths.map((w, i) => (numeric.has(i) ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(HEADER), rule, ...cells.map(line)].join('\n');
}

/** The notes of the rows that have one, as a list under the table. */
export function renderNotes(rows: readonly Row[]): string {
  return rows.filter((r) => r.note).map((r) => `- ${r.scenario} ${r.name}: ${r.note}`).join('\n');
}
