import { type CommandSpec, UsageError, type Values, type CommandIo } from './options.js';
import { requireWritableDir, stopOnSignals, strategyOption } from './run-command.js';
import { compareStrategies, comparisonTable, resolveTrace, shippedTraces, writeComparison } from '../trace/index.js';
import { STRATEGIES } from '../workload/main-job.js';

export const COMPARE: CommandSpec = {
  name: 'compare',
  summary: 'replay one workload trace with several dirty-tracking strategies, print one table of what each cost',
  usage: ['compare --trace FILE|NAME [--strategy S]... [--json] [--report FILE.html]'],
  description: `Replays one trace (docs/trace.md) with each --strategy in turn, each against a fresh in-process device, and prints one table: bytes on the wire, pages sent / dirtied, faults, method switches, scan time and CPU time per frame, fence latency p50 / p99, coherent. Counts are the same on every replay of a trace; times vary.

Ctrl-C (or SIGTERM) ends the current replay after its current record and skips the strategies not yet replayed; the table shows those done. A second one quits at once.

A trace is a file ('vgpu-dirty run --record FILE' writes one) or the name of a trace shipped with the package: ${shippedTraces().join(', ') || '(none found)'}.`,
  options: [
    { name: 'trace', type: 'string', value: 'FILE|NAME', accepts: 'a trace file or the name of a shipped trace', description: 'the trace to replay' },
    { name: 'strategy', type: 'string', value: 'NAME|./module.js', multiple: true, defaultText: `all built-ins: ${STRATEGIES.join(', ')}`, description: 'a strategy to replay the trace with: a built-in name or a module path whose default export is a DirtyStrategy (docs/strategies.md)' },
    { name: 'json', type: 'flag', description: 'print {source, trace, results: [{strategy, coherent, counts, timing}]} instead of the table' },
    { name: 'report', type: 'string', value: 'FILE.html', accepts: 'a file name', description: 'also write the table and per-frame charts as one self-contained HTML file (opens offline)' },
  ],
  epilogue: 'Exit codes: 0 every strategy stayed coherent, 1 one lost coherence or the trace is unreadable (where and why on stderr), 2 bad arguments.',
  run: (args, _positionals, io) => compareCommand(args, io),
};

async function compareCommand(a: Values, io: CommandIo): Promise<number> {
  if (a.trace === undefined) throw new UsageError('compare needs --trace FILE or the name of a shipped trace');
  const names = (a.strategy as string[] | undefined) ?? [...STRATEGIES];
  const strategies = await Promise.all(names.map((s) => strategyOption(s)));
  const report = a.report as string | undefined;
  if (report !== undefined) requireWritableDir(report, '--report');
  const source = resolveTrace(a.trace as string);
  const log = (line: string) => io.err.write(`${line}\n`);
  const stop = stopOnSignals(() => log('stopping after this record; the strategies not yet replayed are skipped (again to quit at once)'));
  const comparison = await compareStrategies(source, strategies, { perFrame: report !== undefined, log, signal: stop.signal }).finally(() => stop.dispose());
  if (a.json === true) io.out(JSON.stringify({ ...comparison, results: comparison.results.map(({ perFrame: _, ...r }) => r) }));
  else for (const line of comparisonTable(comparison)) io.out(line);
  if (report !== undefined) {
    writeComparison(report, comparison);
    log(`report: ${report}`);
  }
  return comparison.results.every((r) => r.coherent) ? 0 : 1;
}
