import type { Difference } from './oracle.js';
import { FAULT_KINDS } from './program.js';
import type { Violation } from './runner.js';
import type { SoakSummary } from './soak.js';

const hex = (v: number | null): string => (v === null ? 'nothing' : `0x${v.toString(16).padStart(2, '0')}`);

/** What differed, in one line. */
export function formatDifference(d: Difference): string {
  const pages = `${d.pageCount} page(s) differ (${d.pages.join(', ')}${d.pageCount > d.pages.length ? ', …' : ''})`;
  const note = d.note ? ` — ${d.note}` : '';
  return `BO ${d.bo} (handle ${d.handle}): ${pages}; first at byte ${d.offset}: expected ${hex(d.expected)}, the ${d.where} has ${hex(d.found)}${note}`;
}

/** A violation: seed, step, invariant, what differed, and how to replay it. */
export function formatViolation(v: Violation): string[] {
  const lines = [`VIOLATION seed ${v.seed} step ${v.step} (${v.op}): ${v.invariant}: ${v.message.split('\n')[0]}`];
  if (v.difference) lines.push(`  ${formatDifference(v.difference)}`);
  for (const extra of v.message.split('\n').slice(1, 6)) lines.push(`  ${extra.trim()}`);
  lines.push(`  replay: ${v.replay}`);
  return lines;
}

/** The summary table. */
export function formatSummary(s: SoakSummary): string[] {
  const byKind = FAULT_KINDS.filter((k) => s.faults[k] > 0).map((k) => `${k} ${s.faults[k]}`).join(', ');
  const rows: Array<[string, string]> = [
    ['runs', `${s.runs} (seeds ${s.firstSeed}..${s.lastSeed})`],
    ['steps', String(s.steps)],
    ['faults injected', `${s.faultsInjected}${byKind ? ` (${byKind})` : ''}`],
    ['flushes checked', `${s.flushesChecked} resolved and compared, ${s.flushesRejected} rejected, ${s.flushesUnchecked} with their session gone`],
    ['device writes', `${s.deviceWrites} (readbacks ${s.readbacks})`],
    ['resyncs', String(s.resyncs)],
    ['converged within', `${s.maxConvergeFlushes} flush(es), ${s.maxConvergeMs} ms after the faults stopped (worst run)`],
    ['lost pages', String(s.lostPages)],
    ['hangs', String(s.hangs)],
    ['violations', String(s.violations.length)],
    ['time', `${s.seconds.toFixed(1)} s (${s.seconds > 0 ? Math.round((60 * s.runs) / s.seconds) : 0} runs/min)`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`);
}
