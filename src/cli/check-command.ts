import { readFileSync, writeFileSync } from 'node:fs';
import { type OptionSpec, type ParsedArgs, UsageError, parseArgs } from './args.js';
import { ARCH_NAMES } from '../core/machine.js';
import {
  BUGS, CONSUMER_TIMINGS, DEFAULT_SCENARIO, DRIVER_METHODS, HELPER_NAMES, INVARIANT_NAMES, type InvariantName, PLANT_NAMES, type Plants,
  type Progress, SCENARIO_LIMITS, type Scenario, ScenarioError, type ScenarioOptions, ScheduleError, buildScenario, exploreParallel, findBug,
  formatCounterexample, scenarioFlags, traceSchedule,
} from '../check/index.js';

export const CHECK_HELP = `vgpu-dirty check --arch <x86|sw-dirty|vivt> (--helper H | --driver M) [options]
vgpu-dirty check --bug ID [--fixed] [options]

Runs a small scenario under every interleaving of its step points with at most
--bound preemptions and checks, in each one: guarantees (a) and (b) of every
clean-record call; after every wp call, no CPU holds a writable TLB entry for
a read-only PTE in its range; after a final quiescent sync the device copy
holds the last value written to every byte. Prints the counts and, when an
invariant fails, the failing interleaving step by step with the command that
replays it. Progress goes to stderr every second.

Scenario: CPU c writes byte c of its pages (--writes per CPU, each page twice
in a row). Core layer (--helper): kernel0 runs --rounds of [wp,] clean-record,
then a consumer copies the recorded pages. Driver layer (--driver): the BO has
the vmwgfx-style tracker and buffer resources; kernel0 runs --rounds of
command validation (scan, transfer to the resources, upload).
  --arch A          x86 (hardware dirty bit), sw-dirty (first write faults to set D),
                    vivt (per-CPU virtually indexed write-back caches)
  --helper H        clean-record (deferred TLB flush, the kernel's), strict
                    (page_mkclean order as the seed quotes it: cache flush, clear +
                    TLB flush, write-protected clean PTE), strict-tlb-first (TLB
                    flush before the cache flush), wp-clean (wp then clean-record)
  --driver M        pagetable or mkwrite: the tracker's initial method
  --cpus N          ${SCENARIO_LIMITS.cpus.min}..${SCENARIO_LIMITS.cpus.max}, default ${DEFAULT_SCENARIO.cpus}
  --pages N         ${SCENARIO_LIMITS.pages.min}..${SCENARIO_LIMITS.pages.max}, default ${DEFAULT_SCENARIO.pages} (vivt: at least --cpus)
  --writes N        writes per CPU, ${SCENARIO_LIMITS.writes.min}..${SCENARIO_LIMITS.writes.max}, default ${DEFAULT_SCENARIO.writes}
  --rounds N        rounds of kernel0, ${SCENARIO_LIMITS.rounds.min}..${SCENARIO_LIMITS.rounds.max}, default ${DEFAULT_SCENARIO.rounds}
  --reads           each CPU reads its page before each write
  --offsets         a second process maps the BO from page 1; odd CPUs write through it
                    (with a driver the BO also sits at a non-zero offset)
  --flush-ceiling N range flushes above N pages flush the whole mm (default 33)
  --ignore LIST     invariants not to check, comma separated (${INVARIANT_NAMES.join(', ')})
 core only:
  --consumer T      after-return (default) or before-flush: also copy recorded
                    pages at post_vma, before the deferred TLB flush
  --nested-wp       kernel1 write-protects pages [1, pages) concurrently
  --nested-clean    kernel1 runs clean-record with its own bitmap and consumer concurrently
  --no-nested-rule  machine without the mm_tlb_flush_nested full-range flush
  --private-vma     another process maps the BO private read-only, first in i_mmap
  --walk-stops      kernel-faithful walk_page_mapping: a skipped VMA ends the walk
 driver only:
  --switch-after N  consecutive votes a method switch needs beyond the first,
                    ${SCENARIO_LIMITS.switchAfter.min}..${SCENARIO_LIMITS.switchAfter.max}, default ${DEFAULT_SCENARIO.switchAfter} (the kernel's)
  --resources N     1 (default) or 2: two buffer resources share the BO; rounds
                    validate the first only, the final sync both
  --munmap          the last CPU writes through its own mapping, then unmaps it
 bugs:
  --bug ID          the scenario of a known bug with the bug planted: ${BUGS.filter((b) => b.kind === 'variants').map((b) => b.id).join(', ')}
                    (docs/fidelity.md has the table); other options adjust it
  --fixed           with --bug: the same scenario without the bug
  --plant LIST      plant bugs by name, comma separated: ${PLANT_NAMES.join(', ')}

Exploration:
  --bound N         preemptions per interleaving, 0..8, default 2 (a counterexample
                    is re-searched at bounds 0, 1, ... so it has as few as possible)
  --jobs N          worker threads once a search runs longer than a second (default 1:
                    this thread only; on a 2-vCPU machine two workers were slower than one
                    thread, docs/fidelity.md)
  --max-seconds S   stop after S seconds; --max-interleavings N after N interleavings:
                    the verdict is then PARTIAL (exit 3), which proves nothing
  --no-reduce       no state caching, sleep sets or probes (to measure what they save)
  --quiet           no progress on stderr
  --schedule S      run only this interleaving (as printed after 'replay:') and trace it
  --save PATH       when an invariant fails, write a replay file there
  --replay PATH     run the interleaving of a replay file (scenario included) and trace it
  --json            one JSON object instead of text

Exit codes: 0 every invariant holds, 1 one fails, 2 bad arguments, 3 partial (a limit stopped the search).`;

const SPEC: Record<string, OptionSpec> = {
  arch: { type: 'string', choices: ARCH_NAMES },
  helper: { type: 'string', choices: HELPER_NAMES },
  driver: { type: 'string', choices: DRIVER_METHODS },
  cpus: { type: 'int', ...SCENARIO_LIMITS.cpus },
  pages: { type: 'int', ...SCENARIO_LIMITS.pages },
  writes: { type: 'int', ...SCENARIO_LIMITS.writes },
  rounds: { type: 'int', ...SCENARIO_LIMITS.rounds },
  reads: { type: 'flag' },
  offsets: { type: 'flag' },
  'flush-ceiling': { type: 'int', min: 0, max: 64 },
  ignore: { type: 'string' },
  consumer: { type: 'string', choices: CONSUMER_TIMINGS },
  'nested-wp': { type: 'flag' },
  'nested-clean': { type: 'flag' },
  'no-nested-rule': { type: 'flag' },
  'private-vma': { type: 'flag' },
  'walk-stops': { type: 'flag' },
  'switch-after': { type: 'int', ...SCENARIO_LIMITS.switchAfter },
  resources: { type: 'int', ...SCENARIO_LIMITS.resources },
  munmap: { type: 'flag' },
  bug: { type: 'string' },
  fixed: { type: 'flag' },
  plant: { type: 'string' },
  bound: { type: 'int', min: 0, max: 8 },
  jobs: { type: 'int', min: 1, max: 64 },
  'max-seconds': { type: 'int', min: 1, max: 86_400 },
  'max-interleavings': { type: 'int', min: 1, max: Number.MAX_SAFE_INTEGER },
  'no-reduce': { type: 'flag' },
  quiet: { type: 'flag' },
  schedule: { type: 'string' },
  save: { type: 'string' },
  replay: { type: 'string' },
  json: { type: 'flag' },
  help: { type: 'flag' },
};

/** Flags that describe the scenario; a replay file brings its own. */
const SCENARIO_FLAGS = [
  'arch', 'helper', 'driver', 'cpus', 'pages', 'writes', 'rounds', 'reads', 'offsets', 'flush-ceiling', 'ignore', 'consumer', 'nested-wp',
  'nested-clean', 'no-nested-rule', 'private-vma', 'walk-stops', 'switch-after', 'resources', 'munmap', 'bug', 'fixed', 'plant',
];

interface ReplayFile {
  scenario: ScenarioOptions;
  schedule: string;
}

/** A comma-separated list, each item one of `allowed`. */
function list<T extends string>(value: unknown, allowed: readonly T[], flag: string): T[] {
  if (value === undefined) return [];
  const items = String(value).split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const item of items) if (!allowed.includes(item as T)) throw new UsageError(`--${flag}: unknown '${item}' (${allowed.join(', ')})`);
  return items as T[];
}

function scenarioFromArgs(args: ParsedArgs): Partial<ScenarioOptions> {
  let o: Partial<ScenarioOptions> = {};
  if (args.bug !== undefined) {
    const bug = findBug(args.bug as string);
    if (bug === undefined) throw new UsageError(`--bug: unknown id '${String(args.bug)}' (${BUGS.map((b) => b.id).join(', ')})`);
    if (bug.kind !== 'variants') throw new UsageError(`--bug ${bug.id} has no scenario: ${bug.why}`);
    o = { ...(args.fixed === true ? bug.fixed : bug.buggy) };
  } else {
    if (args.fixed === true) throw new UsageError('--fixed goes with --bug');
    if (args.arch === undefined || (args.helper === undefined && args.driver === undefined)) throw new UsageError('check needs --arch and --helper or --driver (or --bug ID, or --replay PATH)');
  }
  if (args.helper !== undefined && args.driver !== undefined) throw new UsageError('--helper (core layer) and --driver (driver layer) exclude each other');
  if (args.arch !== undefined) o.arch = args.arch as ScenarioOptions['arch'];
  if (args.helper !== undefined) {
    o.helper = args.helper as ScenarioOptions['helper'];
    o.driver = null;
  }
  if (args.driver !== undefined) o.driver = args.driver as ScenarioOptions['driver'];
  for (const k of ['cpus', 'pages', 'writes', 'rounds', 'resources'] as const) if (args[k] !== undefined) o[k] = args[k] as number;
  if (args['switch-after'] !== undefined) o.switchAfter = args['switch-after'] as number;
  if (args['flush-ceiling'] !== undefined) o.flushCeiling = args['flush-ceiling'] as number;
  if (args.consumer !== undefined) o.consumer = args.consumer as ScenarioOptions['consumer'];
  const flags: Array<[string, keyof ScenarioOptions]> = [
    ['reads', 'reads'], ['offsets', 'offsets'], ['nested-wp', 'nestedWp'], ['nested-clean', 'nestedClean'], ['private-vma', 'privateVma'],
    ['walk-stops', 'walkStops'], ['munmap', 'munmap'],
  ];
  for (const [flag, key] of flags) if (args[flag] === true) (o as Record<string, unknown>)[key] = true;
  if (args['no-nested-rule'] === true) o.nestedFlushRule = false;
  const ignore = list<InvariantName>(args.ignore, INVARIANT_NAMES, 'ignore');
  if (ignore.length > 0) o.ignore = [...(o.ignore ?? []), ...ignore];
  const plants = list(args.plant, PLANT_NAMES, 'plant');
  if (plants.length > 0) o.plants = { ...(o.plants as Plants | undefined), ...Object.fromEntries(plants.map((p) => [p, true])) } as Plants;
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
  const layer = o.driver === null ? `${o.helper}` : `driver ${o.driver}${o.switchAfter !== DEFAULT_SCENARIO.switchAfter ? ` (switch after ${o.switchAfter + 1} vote(s))` : ''}`;
  const plants = PLANT_NAMES.filter((p) => o.plants[p]);
  const extras = [
    o.driver === null && `consumer ${o.consumer}`, o.nestedWp && 'nested wp', o.nestedClean && 'nested clean-record', !o.nestedFlushRule && 'no nested-flush rule',
    o.privateVma && 'private VMA first', o.walkStops && 'walk stops at skipped VMA', o.reads && 'reads', o.offsets && 'mappings at offsets',
    o.flushCeiling !== null && `flush ceiling ${o.flushCeiling}`, o.resources === 2 && 'two resources', o.munmap && 'munmap',
    o.ignore.length > 0 && `not checking ${o.ignore.join(', ')}`, plants.length > 0 && `planted: ${plants.join(', ')}`,
  ].filter(Boolean);
  return `${o.arch}, ${layer}, ${o.cpus} CPU(s), ${o.pages} page(s), ${o.writes} write(s) per CPU, ${o.rounds} round(s)${extras.length ? `, ${extras.join(', ')}` : ''}`;
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

const progressLine = (p: Progress): string =>
  `check: ${p.phase === 'search' ? `bound ${p.bound}` : `minimising at bound ${p.bound}`}, ${p.interleavings} interleavings, ${p.states} states, ${p.seconds.toFixed(1)} s${p.workers > 1 ? `, ${p.workers} workers` : ''}`;

export async function checkCommand(argv: string[], out: (line: string) => void, err: (line: string) => void = (l) => void process.stderr.write(l + '\n')): Promise<number> {
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
  const reduce = args['no-reduce'] !== true;
  const r = await exploreParallel(scenario.options, {
    bound, reduce, sleepSets: reduce, jobs: args.jobs as number | undefined,
    maxSeconds: args['max-seconds'] as number | undefined, maxInterleavings: args['max-interleavings'] as number | undefined,
    onProgress: args.quiet === true ? undefined : (p) => err(progressLine(p)),
  });
  const cx = r.schedule === null ? null : traceSchedule(scenario, r.schedule);
  const replay = r.schedule === null ? null : replayCommand(scenario, r.schedule);
  if (r.schedule !== null && args.save !== undefined) {
    const file: ReplayFile = { scenario: { ...scenario.options }, schedule: r.schedule };
    writeFileSync(args.save as string, JSON.stringify(file, null, 2) + '\n');
  }
  const code = r.verdict === 'holds' ? 0 : r.verdict === 'fails' ? 1 : 3;
  if (json) {
    out(JSON.stringify({ scenario: scenario.options, bound: r.bound, verdict: r.verdict, stoppedBy: r.stoppedBy, violation: r.violation, schedule: r.schedule, replay, stats: r.stats, counterexample: cx }));
    return code;
  }
  const s = r.stats;
  out(`vgpu-dirty check: ${describeScenario(scenario)}; bound ${bound} preemption(s)`);
  out(`invariants: ${INVARIANT_NAMES.filter((n) => !scenario.options.ignore.includes(n)).join(', ')}`);
  out(`interleavings: ${s.interleavings} (${s.complete} complete, ${s.pruned} cut short); distinct states: ${s.states}; decision points: ${s.decisionPoints}`);
  out(`reduction: ${s.slept} alternatives asleep, ${s.probesSettled} of ${s.probes} probed alternatives settled without re-execution, ${s.replayed} decisions re-executed`);
  out(`time: ${s.seconds.toFixed(3)} s, ${s.perSecond} interleavings/s${s.workers > 1 ? `, ${s.workers} worker threads` : ''}`);
  const faults = Object.entries(s.faults).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
  out(`machine (all interleavings): faults ${faults}; D bits set by hardware ${s.dirtyBitSets}; TLB flushes ${s.tlbFlushes}; accesses blocked on a lock ${s.blockedAttempts}`);
  if (r.verdict === 'holds') {
    out(`verdict: HOLDS for every interleaving with at most ${bound} preemption(s)`);
    return 0;
  }
  if (r.verdict === 'partial') {
    out(`verdict: PARTIAL — stopped by --${r.stoppedBy} after ${s.interleavings} interleavings; no violation in the part explored, which proves nothing about the rest`);
    return 3;
  }
  out(`verdict: FAILS (${r.violation!.invariant}) with ${r.preemptions} preemption(s)`);
  for (const line of formatCounterexample(cx!)) out(line);
  out(`replay: ${replay}`);
  if (args.save !== undefined) out(`replay file: ${args.save as string} (vgpu-dirty check --replay ${args.save as string})`);
  return 1;
}
