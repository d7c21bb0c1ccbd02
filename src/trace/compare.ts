import { type ReplayOptions, type ReplayReport, replayTrace } from './replay.js';
import { inspectTrace, type TraceSource, type TraceSummary } from './source.js';
import type { DirtyStrategy } from '../driver/strategies/contract.js';
import { type StrategyPlan, strategyPlan } from './strategy.js';

export interface Comparison {
  /** The trace as given (a path, or '(bytes)'). */
  source: string;
  trace: TraceSummary;
  /** One replay per strategy, in the order asked. */
  results: ReplayReport[];
}

/**
 * Replay one trace with each strategy in turn, each against a fresh
 * in-process device (replayTrace), so the counts of every row are those any
 * later replay gives too. Every strategy is loaded before anything runs.
 */
export async function compareStrategies(source: TraceSource, strategies: ReadonlyArray<string | DirtyStrategy>, opts: Omit<ReplayOptions, 'strategy'> = {}): Promise<Comparison> {
  const plans: StrategyPlan[] = [];
  for (const s of strategies) plans.push(await strategyPlan(s));
  const trace = await inspectTrace(source);
  const results: ReplayReport[] = [];
  for (const plan of plans) {
    if (opts.signal?.aborted === true) break;
    results.push(await replayTrace(source, { ...opts, strategy: plan.strategy }));
  }
  return { source: typeof source === 'string' ? source : '(bytes)', trace, results };
}

/** The columns of the comparison table, shared by the terminal table and the HTML report. */
export const COMPARE_COLUMNS: ReadonlyArray<{ title: string; cell: (r: ReplayReport) => string }> = [
  { title: 'strategy', cell: (r) => r.strategy },
  { title: 'bytes on the wire', cell: (r) => mib(r.counts.bytesOnWire) },
  { title: 'pages sent / dirtied', cell: (r) => `${r.counts.pagesSent} / ${r.counts.pagesDirtied}` },
  { title: 'faults', cell: (r) => String(r.counts.faults) },
  { title: 'switches', cell: (r) => String(r.counts.methodSwitches) },
  { title: 'scan ms/frame', cell: (r) => r.timing.scanMsPerFrame.toFixed(3) },
  { title: 'CPU ms/frame', cell: (r) => r.timing.cpuMsPerFrame.toFixed(2) },
  { title: 'fence p50 / p99 ms', cell: (r) => `${r.timing.fenceLatencyMs.p50.toFixed(1)} / ${r.timing.fenceLatencyMs.p99.toFixed(1)}` },
  { title: 'coherent', cell: (r) => (r.coherent ? 'yes' : `NO (${r.counts.differingPages} pages differ)`) },
];

/** The comparison as lines of text: a heading, one row per strategy, a note on what varies. */
export function comparisonTable(c: Comparison): string[] {
  const rows = [COMPARE_COLUMNS.map((col) => col.title), ...c.results.map((r) => COMPARE_COLUMNS.map((col) => col.cell(r)))];
  const widths = COMPARE_COLUMNS.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [
    `trace ${c.source}: ${c.trace.start.description} — ${c.trace.frames} frames, ${c.trace.accesses} accesses, ${c.trace.start.cpus} CPUs`,
    '',
    line(rows[0]!),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.slice(1).map(line),
    '',
    'Counts (bytes, pages, faults, switches) are the same on every replay; scan, CPU and fence times vary.',
  ];
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}
