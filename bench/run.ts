// `npm run bench [-- --quick] [--only 1,3] [--runs N] [--profile DIR]`: runs the
// scenarios of issue 6, prints a Markdown table and writes
// bench/results/<timestamp>.json. Exit 1 if a scenario produced no numbers
// (never because of a speed). --profile writes a V8 CPU profile of every child
// process (device, workers) to DIR; profile this process itself with
// `node --cpu-prof --cpu-prof-dir DIR dist/bench/run.js ...`.
import { parseArgs } from 'node:util';
import { ProgressLine, stderrTerminal } from '../src/cli/progress.js';
import { childNodeArgs, closeAllChildren } from './lib/children.js';
import { machineInfo } from './lib/machine-info.js';
import { type RunReport, scenariosWithoutNumbers, writeReport } from './lib/report.js';
import type { Row } from './lib/result.js';
import type { Context, Scenario } from './lib/scenario.js';
import { renderNotes, renderTable } from './lib/table.js';
import { checker } from './scenarios/checker.js';
import { cpuAccess } from './scenarios/cpu-access.js';
import { dashboard } from './scenarios/dashboard.js';
import { encodings } from './scenarios/encodings.js';
import { fenceLatency } from './scenarios/fence-latency.js';
import { helperCost } from './scenarios/helper-cost.js';
import { slowDevice } from './scenarios/slow-device.js';
import { strategies } from './scenarios/strategies.js';
import { strategiesOnTraces } from './scenarios/strategies-on-traces.js';
import { writeback } from './scenarios/writeback.js';

const SCENARIOS: readonly Scenario[] = [cpuAccess, helperCost, writeback, fenceLatency, strategies, strategiesOnTraces, slowDevice, dashboard, checker, encodings];
/** Scenario 6 (memory) is measured during scenario 3 and reported under its own number. */
const EXPECTED_IDS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'];
const MIN_RUNS = 5;

const HELP = `npm run bench [-- --quick] [--only 1,3] [--runs N] [--profile DIR]

Runs the benchmark scenarios (1 CPU access path, 2 helper cost, 3 end-to-end
writeback with 6 memory, 4 fence latency, 5 strategies, 7 slow device, 8
dashboard overhead, 9 checker, 10 encodings), each against a baseline measured in the same run.
Prints a table and writes bench/results/<timestamp>.json. --quick: small sizes (under a minute).
--runs N: measured runs per scenario (at least ${MIN_RUNS}). --profile DIR: V8 CPU
profile of every child process. Exit 1 when a scenario produced no numbers,
2 on bad arguments; never because of a speed.`;

/** Bad command line: message on stderr, exit 2. */
class UsageError extends Error {}

function parseCommandLine() {
  let values;
  try {
    ({ values } = parseArgs({
      options: { quick: { type: 'boolean' }, only: { type: 'string' }, runs: { type: 'string' }, profile: { type: 'string' }, help: { type: 'boolean' } },
      strict: true,
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const only = values.only?.split(',').map((s) => s.trim());
  for (const id of only ?? []) if (!EXPECTED_IDS.includes(id)) throw new UsageError(`--only: unknown scenario '${id}' (1–10)`);
  const runs = Number(values.runs ?? MIN_RUNS);
  if (!Number.isInteger(runs) || runs < MIN_RUNS) throw new UsageError(`--runs must be an integer >= ${MIN_RUNS}, got '${values.runs}'`);
  return { help: values.help === true, quick: values.quick === true, only, runs, profile: values.profile };
}

async function main(): Promise<number> {
  const args = parseCommandLine();
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  const { quick, only, runs } = args;
  if (args.profile !== undefined) childNodeArgs.push('--cpu-prof', '--cpu-prof-dir', args.profile);
  const selected = SCENARIOS.filter((s) => only === undefined || only.includes(s.id));
  // Scenarios done of those selected: a bar under the log lines on a terminal, a line every 5 s elsewhere.
  const progress = new ProgressLine(stderrTerminal, { label: 'bench', unit: 'scenarios', total: selected.length });
  let done = 0;
  const ctx: Context = { quick, runs, warmup: 1, log: (line) => (progress.log(line), progress.update(done, `scenario ${selected[done]?.id ?? '-'}`)) };
  const t0 = performance.now();
  const rows: Row[] = [];
  const errors: RunReport['errors'] = [];
  for (const s of selected) {
    ctx.log(`scenario ${s.id}: ${s.title}`);
    const ts = performance.now();
    try {
      rows.push(...(await s.run(ctx)));
    } catch (e) {
      errors.push({ scenario: s.id, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      ctx.log(`scenario ${s.id} failed: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      await closeAllChildren(); // whatever a failing scenario left running
    }
    done++;
    ctx.log(`  (${((performance.now() - ts) / 1000).toFixed(1)} s)`);
  }
  progress.end();
  const report: RunReport = {
    date: new Date().toISOString(),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    quick, runs, warmup: ctx.warmup,
    seconds: Math.round((performance.now() - t0) / 100) / 10,
    machine: machineInfo(),
    results: rows,
    errors,
  };
  const m = report.machine;
  console.log(`${report.command} — ${report.date}, ${report.seconds} s`);
  console.log(`Node ${m.node}, ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}, ws ${m.ws}${m.bufferutil ? ' + bufferutil' : ''}`);
  console.log(`median / min / max of ${runs} runs after ${ctx.warmup} warm-up; ratio = median / baseline median\n`);
  console.log(renderTable(rows));
  console.log(`\n${renderNotes(rows)}`);
  console.log(`\nwritten to ${writeReport(report)}`);
  const expected = only === undefined ? EXPECTED_IDS : EXPECTED_IDS.filter((id) => only.includes(id) || (id === '6' && only.includes('3')));
  const missing = scenariosWithoutNumbers(expected, rows);
  if (missing.length > 0) {
    console.error(`no numbers from scenario(s) ${missing.join(', ')}`);
    for (const e of errors) console.error(`scenario ${e.scenario}: ${e.error}`);
    return 1;
  }
  return 0;
}

// Children are closed on every way out: normal end, error, Ctrl-C.
process.once('SIGINT', () => void closeAllChildren().then(() => process.exit(130)));
main().then(
  async (code) => {
    await closeAllChildren();
    process.exit(code);
  },
  async (e: unknown) => {
    console.error(e instanceof UsageError ? `bench: ${e.message}\n\n${HELP}` : e);
    await closeAllChildren();
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
