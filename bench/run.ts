// `npm run bench [-- --quick] [--only 1,3] [--runs N] [--profile DIR]`: runs the
// scenarios of issue 6, prints a Markdown table and writes
// bench/results/<timestamp>.json. Exit 1 if a scenario produced no numbers
// (never because of a speed). --profile writes a V8 CPU profile of every child
// process (device, workers) to DIR; profile this process itself with
// `node --cpu-prof --cpu-prof-dir DIR dist/bench/run.js ...`.
import { parseArgs } from 'node:util';
import { childNodeArgs, closeAllChildren } from './lib/children.js';
import { machineInfo } from './lib/machine-info.js';
import { type RunReport, scenariosWithoutNumbers, writeReport } from './lib/report.js';
import type { Row } from './lib/result.js';
import type { Context, Scenario } from './lib/scenario.js';
import { renderNotes, renderTable } from './lib/table.js';
import { cpuAccess } from './scenarios/cpu-access.js';
import { fenceLatency } from './scenarios/fence-latency.js';
import { helperCost } from './scenarios/helper-cost.js';
import { slowDevice } from './scenarios/slow-device.js';
import { strategies } from './scenarios/strategies.js';
import { writeback } from './scenarios/writeback.js';

const SCENARIOS: readonly Scenario[] = [cpuAccess, helperCost, writeback, fenceLatency, strategies, slowDevice];
/** Scenario 6 (memory) is measured during scenario 3 and reported under its own number. */
const EXPECTED_IDS = ['1', '2', '3', '4', '5', '6', '7'];
const MIN_RUNS = 5;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean' }, only: { type: 'string' }, runs: { type: 'string' }, profile: { type: 'string' } },
    strict: true,
  });
  const quick = values.quick === true;
  if (values.profile !== undefined) childNodeArgs.push('--cpu-prof', '--cpu-prof-dir', values.profile);
  const only = values.only?.split(',').map((s) => s.trim());
  const selected = SCENARIOS.filter((s) => only === undefined || only.includes(s.id));
  const runs = Math.max(MIN_RUNS, Number(values.runs ?? MIN_RUNS));
  const ctx: Context = { quick, runs, warmup: 1, log: (line) => process.stderr.write(`${line}\n`) };
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
    ctx.log(`  (${((performance.now() - ts) / 1000).toFixed(1)} s)`);
  }
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
    console.error(e);
    await closeAllChildren();
    process.exit(1);
  },
);
