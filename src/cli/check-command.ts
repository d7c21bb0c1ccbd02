import { readFileSync, writeFileSync } from 'node:fs';
import { type OptionSpec, type ParsedArgs, UsageError, parseArgs } from './args.js';
import { ARCH_NAMES } from '../core/machine.js';
import {
  CONSUMER_TIMINGS, DEFAULT_SCENARIO, HELPER_NAMES, INVARIANT_NAMES, SCENARIO_LIMITS, type Scenario, ScenarioError,
  type ScenarioOptions, ScheduleError, buildScenario, explore, formatCounterexample, scenarioFlags, traceSchedule,
} from '../check/index.js';

export const CHECK_HELP = `vgpu-dirty check --arch <x86|sw-dirty|vivt> --helper <clean-record|strict|wp-clean> [options]

Runs a small scenario under every interleaving of its step points with at most
--bound preemptions and checks, in each one: guarantees (a) and (b) of every
clean-record call; after every wp call, no CPU holds a writable TLB entry for
a read-only PTE in its range; after a final quiescent sync (flush caches, the
same helper, the consumer copies what it recorded) the device copy holds the
last value written to every byte. Prints the counts and, when an invariant
fails, the failing interleaving step by step with the command that replays it.

Scenario: CPU c writes byte c of its pages (--writes per CPU, each page twice
in a row); kernel0 runs --rounds of [wp,] clean-record, then the consumer.
  --arch A          x86 (hardware dirty bit), sw-dirty (first write faults to set D),
                    vivt (per-CPU virtually indexed write-back caches)
  --helper H        clean-record (deferred TLB flush, the kernel's), strict
                    (page_mkclean order: flush under the PTE lock), wp-clean
                    (wp then clean-record, vmwgfx's snapshot pair)
  --cpus N          ${SCENARIO_LIMITS.cpus.min}..${SCENARIO_LIMITS.cpus.max}, default ${DEFAULT_SCENARIO.cpus}
  --pages N         ${SCENARIO_LIMITS.pages.min}..${SCENARIO_LIMITS.pages.max}, default ${DEFAULT_SCENARIO.pages} (vivt: at least --cpus)
  --writes N        writes per CPU, ${SCENARIO_LIMITS.writes.min}..${SCENARIO_LIMITS.writes.max}, default ${DEFAULT_SCENARIO.writes}
  --rounds N        helper calls, ${SCENARIO_LIMITS.rounds.min}..${SCENARIO_LIMITS.rounds.max}, default ${DEFAULT_SCENARIO.rounds}
  --consumer T      after-return (default) or before-flush: also copy recorded
                    pages at post_vma, before the deferred TLB flush
  --nested-wp       kernel1 write-protects pgoffs [1, pages) concurrently
  --no-nested-rule  machine without the mm_tlb_flush_nested full-range flush
  --private-vma     another process maps the BO private read-only, first in i_mmap
  --walk-stops      kernel-faithful walk_page_mapping: a skipped VMA ends the walk

Exploration:
  --bound N         preemptions per interleaving, 0..8, default 2 (bounds are
                    explored in increasing order, so a counterexample is minimal)
  --no-reduce       no state hashing (to measure what it saves)
  --schedule S      run only this interleaving (as printed after 'replay:') and trace it
  --save PATH       when an invariant fails, write a replay file there
  --replay PATH     run the interleaving of a replay file (scenario included) and trace it
  --json            one JSON object instead of text

Exit codes: 0 every invariant holds, 1 one fails, 2 bad arguments.`;

const SPEC: Record<string, OptionSpec> = {
  arch: { type: 'string', choices: ARCH_NAMES },
  helper: { type: 'string', choices: HELPER_NAMES },
  cpus: { type: 'int', ...SCENARIO_LIMITS.cpus },
  pages: { type: 'int', ...SCENARIO_LIMITS.pages },
  writes: { type: 'int', ...SCENARIO_LIMITS.writes },
  rounds: { type: 'int', ...SCENARIO_LIMITS.rounds },
  consumer: { type: 'string', choices: CONSUMER_TIMINGS },
  'nested-wp': { type: 'flag' },
  'no-nested-rule': { type: 'flag' },
  'private-vma': { type: 'flag' },
  'walk-stops': { type: 'flag' },
  bound: { type: 'int', min: 0, max: 8 },
  'no-reduce': { type: 'flag' },
  schedule: { type: 'string' },
  save: { type: 'string' },
  replay: { type: 'string' },
  json: { type: 'flag' },
  help: { type: 'flag' },
};

/** Flags that describe the scenario; a replay file brings its own. */
const SCENARIO_FLAGS = ['arch', 'helper', 'cpus', 'pages', 'writes', 'rounds', 'consumer', 'nested-wp', 'no-nested-rule', 'private-vma', 'walk-stops'];

interface ReplayFile {
  scenario: ScenarioOptions;
  schedule: string;
}

function scenarioFromArgs(args: ParsedArgs): Partial<ScenarioOptions> {
  if (args.arch === undefined || args.helper === undefined) throw new UsageError('check needs --arch and --helper (or --replay PATH)');
  const o: Partial<ScenarioOptions> = {
    arch: args.arch as ScenarioOptions['arch'],
    helper: args.helper as ScenarioOptions['helper'],
    nestedWp: args['nested-wp'] === true,
    nestedFlushRule: args['no-nested-rule'] !== true,
    privateVma: args['private-vma'] === true,
    walkStops: args['walk-stops'] === true,
  };
  for (const k of ['cpus', 'pages', 'writes', 'rounds'] as const) if (args[k] !== undefined) o[k] = args[k] as number;
  if (args.consumer !== undefined) o.consumer = args.consumer as ScenarioOptions['consumer'];
  return o;
}

function readReplayFile(path: string): ReplayFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`cannot read replay file ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const f = parsed as Partial<ReplayFile> | null;
  if (f === null || typeof f !== 'object' || typeof f.schedule !== 'string' || typeof f.scenario !== 'object' || f.scenario === null) {
    throw new UsageError(`replay file ${path} needs {"scenario": {...}, "schedule": "..."}`);
  }
  return f as ReplayFile;
}

function build(o: Partial<ScenarioOptions>): Scenario {
  try {
    return buildScenario(o);
  } catch (e) {
    if (e instanceof ScenarioError) throw new UsageError(e.message);
    throw e;
  }
}

const replayCommand = (s: Scenario, schedule: string): string => `vgpu-dirty check ${scenarioFlags(s.options).join(' ')} --schedule ${schedule}`;

function describeScenario(s: Scenario): string {
  const o = s.options;
  const extras = [o.nestedWp && 'nested wp', !o.nestedFlushRule && 'no nested-flush rule', o.privateVma && 'private VMA first', o.walkStops && 'walk stops at skipped VMA'].filter(Boolean);
  return `${o.arch}, ${o.helper}, ${o.cpus} CPU(s), ${o.pages} page(s), ${o.writes} write(s) per CPU, ${o.rounds} round(s), consumer ${o.consumer}${extras.length ? `, ${extras.join(', ')}` : ''}`;
}

/** Trace one interleaving (--schedule / --replay). */
function traceOne(scenario: Scenario, schedule: string, json: boolean, out: (line: string) => void): number {
  let cx;
  try {
    cx = traceSchedule(scenario, schedule);
  } catch (e) {
    if (e instanceof ScheduleError) throw new UsageError(`--schedule: ${e.message}`);
    throw e;
  }
  if (json) out(JSON.stringify({ scenario: scenario.options, verdict: cx.violation === null ? 'holds' : 'fails', counterexample: cx }));
  else {
    out(`vgpu-dirty check: one interleaving of ${describeScenario(scenario)}`);
    for (const line of formatCounterexample(cx)) out(line);
  }
  return cx.violation === null ? 0 : 1;
}

export function checkCommand(argv: string[], out: (line: string) => void): number {
  const args = parseArgs(argv, SPEC);
  if (args.help) {
    out(CHECK_HELP);
    return 0;
  }
  const json = args.json === true;
  if (args.replay !== undefined) {
    const given = SCENARIO_FLAGS.filter((k) => args[k] !== undefined);
    if (given.length > 0 || args.schedule !== undefined) throw new UsageError(`--replay brings its own scenario and schedule; drop --${[...given, ...(args.schedule !== undefined ? ['schedule'] : [])].join(', --')}`);
    const file = readReplayFile(args.replay as string);
    return traceOne(build(file.scenario), file.schedule, json, out);
  }
  const scenario = build(scenarioFromArgs(args));
  if (args.schedule !== undefined) return traceOne(scenario, args.schedule as string, json, out);

  const bound = (args.bound as number | undefined) ?? 2;
  const r = explore(scenario, { bound, reduce: args['no-reduce'] !== true });
  const cx = r.schedule === null ? null : traceSchedule(scenario, r.schedule);
  const replay = r.schedule === null ? null : replayCommand(scenario, r.schedule);
  if (r.schedule !== null && args.save !== undefined) {
    const file: ReplayFile = { scenario: { ...scenario.options }, schedule: r.schedule };
    writeFileSync(args.save as string, JSON.stringify(file, null, 2) + '\n');
  }
  if (json) {
    out(JSON.stringify({ scenario: scenario.options, bound: r.bound, verdict: r.verdict, violation: r.violation, schedule: r.schedule, replay, stats: r.stats, counterexample: cx }));
    return r.verdict === 'holds' ? 0 : 1;
  }
  const s = r.stats;
  out(`vgpu-dirty check: ${describeScenario(scenario)}; bound ${bound} preemption(s)`);
  out(`invariants: ${INVARIANT_NAMES.join(', ')}`);
  out(`interleavings: ${s.interleavings} (${s.complete} complete, ${s.pruned} cut by state hashing); distinct states: ${s.states}; decision points: ${s.decisionPoints}`);
  out(`time: ${s.seconds.toFixed(3)} s, ${s.perSecond} interleavings/s`);
  const faults = Object.entries(s.faults).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
  out(`machine (all interleavings): faults ${faults}; D bits set by hardware ${s.dirtyBitSets}; TLB flushes ${s.tlbFlushes}; accesses blocked on a PTE lock ${s.blockedAttempts}`);
  if (r.verdict === 'holds') {
    out(`verdict: HOLDS for every interleaving with at most ${bound} preemption(s)`);
    return 0;
  }
  out(`verdict: FAILS (${r.violation!.invariant}) with ${r.preemptions} preemption(s)`);
  for (const line of formatCounterexample(cx!)) out(line);
  out(`replay: ${replay}`);
  if (args.save !== undefined) out(`replay file: ${args.save as string} (vgpu-dirty check --replay ${args.save as string})`);
  return 1;
}
