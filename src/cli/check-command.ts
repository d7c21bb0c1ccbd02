import { readFileSync, writeFileSync } from 'node:fs';
import { type CommandIo, type CommandSpec, UsageError, type Values, commandHelp, execute } from './options.js';
import { ProgressLine, lineIo } from './progress.js';
import { ARCH_NAMES } from '../core/machine.js';
import {
  BUGS, CONSUMER_TIMINGS, DEFAULT_SCENARIO, DRIVER_METHODS, HELPER_NAMES, INVARIANT_NAMES, type InvariantName, PLANT_NAMES, type Plants,
  type Progress, SCENARIO_LIMITS, type Scenario, ScenarioError, type ScenarioOptions, ScheduleError, buildScenario, checkedInvariants, exploreParallel, findBug,
  formatCounterexample, scenarioFlags, traceSchedule,
} from '../check/index.js';

const SCENARIO = 'scenario';
const CORE = 'core layer only';
const DRIVER = 'driver layer only';
const BUG = 'bugs';
const EXPLORE = 'exploration';
const OUTPUT = 'output';

export const CHECK: CommandSpec = {
  name: 'check',
  summary: 'explore every interleaving of a small scenario and check the dirty-tracking invariants; print a counterexample when one fails',
  usage: ['check --arch <x86|sw-dirty|vivt> (--helper H | --driver M) [options]', 'check --bug ID [--fixed] [options]', 'check --replay PATH'],
  description: `Runs a small scenario under every interleaving of its step points with at most --bound preemptions and checks, in each one: guarantees (a) and (b) of every clean-record call and tracker scan; after every wp call, no CPU holds a writable TLB entry for a read-only PTE in its range; with uffd-wp, no PTE is writable with its uffd-wp bit set; after a final quiescent sync the device copy holds the last value written to every byte. Prints the counts and, when an invariant fails, the failing interleaving step by step with the command that replays it.

Scenario: CPU c writes byte c of its pages (--writes per CPU, each page twice in a row). Core layer (--helper): kernel0 runs --rounds of [wp,] clean-record, then a consumer copies the recorded pages. Driver layer (--driver): the BO has the vmwgfx-style tracker and buffer resources; kernel0 runs --rounds of command validation (scan, transfer to the resources, upload).

Progress (interleavings explored, states, rate) goes to stderr: a bar on a terminal, a line a second otherwise. --max-seconds and --max-interleavings stop the search early with a PARTIAL verdict (exit 3), which proves nothing about the part not explored.`,
  options: [
    { name: 'arch', type: 'string', value: 'A', choices: ARCH_NAMES, group: SCENARIO, description: 'x86 (hardware dirty bit), sw-dirty (first write faults to set D), vivt (per-CPU virtually indexed write-back caches)' },
    { name: 'helper', type: 'string', value: 'H', choices: HELPER_NAMES, group: SCENARIO, description: "clean-record (deferred TLB flush, the kernel's), strict (page_mkclean order: cache flush, clear + TLB flush, write-protected clean PTE), strict-tlb-first (TLB flush before the cache flush), wp-clean (wp then clean-record); the userspace trackers of one process's memfd mapping: uffd-wp (PAGEMAP_SCAN of written pages with WP_MATCHING, async uffd-wp), soft-dirty (read pagemap's soft-dirty bits, then clear_refs 4)" },
    { name: 'driver', type: 'string', value: 'M', choices: DRIVER_METHODS, group: SCENARIO, description: "the tracker's initial method: pagetable or mkwrite" },
    { name: 'cpus', type: 'int', ...SCENARIO_LIMITS.cpus, defaultText: String(DEFAULT_SCENARIO.cpus), group: SCENARIO, description: 'simulated CPUs' },
    { name: 'pages', type: 'int', ...SCENARIO_LIMITS.pages, defaultText: String(DEFAULT_SCENARIO.pages), group: SCENARIO, description: 'pages of the BO (vivt: at least --cpus)' },
    { name: 'writes', type: 'int', ...SCENARIO_LIMITS.writes, defaultText: String(DEFAULT_SCENARIO.writes), group: SCENARIO, description: 'writes per CPU' },
    { name: 'rounds', type: 'int', ...SCENARIO_LIMITS.rounds, defaultText: String(DEFAULT_SCENARIO.rounds), group: SCENARIO, description: 'rounds of kernel0' },
    { name: 'reads', type: 'flag', group: SCENARIO, description: 'each CPU reads its page before each write' },
    { name: 'offsets', type: 'flag', group: SCENARIO, description: 'a second process maps the BO from page 1; odd CPUs write through it (with a driver the BO also sits at a non-zero offset)' },
    { name: 'flush-ceiling', type: 'int', min: 0, max: 64, defaultText: '33', group: SCENARIO, description: 'range flushes above N pages flush the whole mm' },
    { name: 'ignore', type: 'string', value: 'LIST', group: SCENARIO, description: `invariants not to check, comma separated (${INVARIANT_NAMES.join(', ')})` },
    { name: 'consumer', type: 'string', value: 'T', choices: CONSUMER_TIMINGS, defaultText: 'after-return', group: CORE, description: 'when the consumer copies the recorded pages: after-return, or before-flush (also at post_vma, before the deferred TLB flush)' },
    { name: 'nested-wp', type: 'flag', group: CORE, description: 'kernel1 write-protects pages [1, pages) concurrently' },
    { name: 'nested-clean', type: 'flag', group: CORE, description: 'kernel1 runs clean-record with its own bitmap and consumer concurrently' },
    { name: 'no-nested-rule', type: 'flag', group: CORE, description: 'machine without the mm_tlb_flush_nested full-range flush' },
    { name: 'private-vma', type: 'flag', group: CORE, description: 'another process maps the BO private read-only, first in i_mmap' },
    { name: 'walk-stops', type: 'flag', group: CORE, description: 'kernel-faithful walk_page_mapping: a skipped VMA ends the walk' },
    { name: 'remap', type: 'flag', group: CORE, description: 'soft-dirty: the last CPU then unmaps its last page and maps it again in place' },
    { name: 'unregistered-tail', type: 'flag', group: CORE, description: 'uffd-wp: the last page is not registered with userfaultfd (the scan goes without CHECK_WPASYNC; the consumer copies that page every time)' },
    { name: 'switch-after', type: 'int', ...SCENARIO_LIMITS.switchAfter, defaultText: `${DEFAULT_SCENARIO.switchAfter}, the kernel's`, group: DRIVER, description: 'consecutive votes a method switch needs beyond the first' },
    { name: 'resources', type: 'int', ...SCENARIO_LIMITS.resources, defaultText: String(DEFAULT_SCENARIO.resources), group: DRIVER, description: 'with 2, two buffer resources share the BO; rounds validate the first only, the final sync both' },
    { name: 'munmap', type: 'flag', group: DRIVER, description: 'the last CPU writes through its own mapping, then unmaps it' },
    { name: 'bug', type: 'string', value: 'ID', group: BUG, description: `the scenario of a known bug with the bug planted: ${BUGS.filter((b) => b.kind === 'variants').map((b) => b.id).join(', ')} (docs/fidelity.md has the table); other options adjust it` },
    { name: 'fixed', type: 'flag', group: BUG, description: 'with --bug: the same scenario without the bug' },
    { name: 'plant', type: 'string', value: 'LIST', group: BUG, description: `plant bugs by name, comma separated: ${PLANT_NAMES.join(', ')}` },
    { name: 'bound', type: 'int', min: 0, max: 8, defaultText: "2; with --bug, the bound its row gives (0 for B5)", group: EXPLORE, description: 'preemptions per interleaving (a counterexample is re-searched at bounds 0, 1, ... so it has as few as possible)' },
    { name: 'jobs', type: 'int', min: 1, max: 64, default: 1, group: EXPLORE, description: 'worker threads once a search runs longer than a second (1: this thread only; on a 2-vCPU machine two workers were slower than one thread, docs/fidelity.md)' },
    { name: 'max-seconds', type: 'int', value: 'S', min: 1, max: 86_400, group: EXPLORE, description: 'stop after S seconds: the verdict is then PARTIAL (exit 3), which proves nothing' },
    { name: 'max-interleavings', type: 'int', min: 1, max: Number.MAX_SAFE_INTEGER, group: EXPLORE, description: 'stop after N interleavings: the verdict is then PARTIAL (exit 3), which proves nothing' },
    { name: 'no-reduce', type: 'flag', group: EXPLORE, description: 'no state caching, sleep sets or probes (to measure what they save)' },
    { name: 'schedule', type: 'string', value: 'S', group: EXPLORE, description: "run only this interleaving (as printed after 'replay:') and trace it" },
    { name: 'replay', type: 'string', value: 'PATH', group: EXPLORE, description: 'run the interleaving of a replay file (scenario included) and trace it' },
    { name: 'save', type: 'string', value: 'PATH', group: OUTPUT, description: 'when an invariant fails, write a replay file there' },
    { name: 'quiet', type: 'flag', group: OUTPUT, description: 'no progress on stderr' },
    { name: 'json', type: 'flag', group: OUTPUT, description: 'one JSON object instead of text' },
  ],
  epilogue: 'Exit codes: 0 every invariant holds, 1 one fails, 2 bad arguments, 3 partial (a limit stopped the search).',
  run: (args, _positionals, io) => check(args, io),
};

export const CHECK_HELP = commandHelp(CHECK);

/** `vgpu-dirty check ARGV` in this process, with results to `out` and progress lines to `err`. */
export const checkCommand = (argv: readonly string[], out: (line: string) => void, err?: (line: string) => void): Promise<number> => execute(CHECK, argv, lineIo(out, err));

/** Flags that describe the scenario; a replay file brings its own. */
const SCENARIO_FLAGS = [
  'arch', 'helper', 'driver', 'cpus', 'pages', 'writes', 'rounds', 'reads', 'offsets', 'flush-ceiling', 'ignore', 'consumer', 'nested-wp',
  'nested-clean', 'no-nested-rule', 'private-vma', 'walk-stops', 'remap', 'unregistered-tail', 'switch-after', 'resources', 'munmap', 'bug', 'fixed', 'plant',
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

function scenarioFromArgs(args: Values): Partial<ScenarioOptions> {
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
    ['walk-stops', 'walkStops'], ['munmap', 'munmap'], ['remap', 'remap'], ['unregistered-tail', 'unregisteredTail'],
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
    o.remap && 'remap', o.unregisteredTail && 'unregistered last page',
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

/** What the bar says besides the count: the phase, the states, the workers and a limit ahead. */
const progressDetail = (p: Progress, limit: string | undefined): string =>
  [p.phase === 'search' ? `bound ${p.bound}` : `minimising at bound ${p.bound}`, `${p.states} states`, p.workers > 1 && `${p.workers} workers`, limit].filter(Boolean).join(', ');

async function check(args: Values, io: CommandIo): Promise<number> {
  const out = io.out;
  const json = args.json === true;
  if (args.replay !== undefined) {
    const given = SCENARIO_FLAGS.filter((k) => args[k] !== undefined);
    if (given.length > 0 || args.schedule !== undefined) throw new UsageError(`--replay brings its own scenario and schedule; drop --${[...given, ...(args.schedule !== undefined ? ['schedule'] : [])].join(', --')}`);
    const file = readReplayFile(args.replay as string);
    return traceOne(build(file.scenario), file.schedule, json, out);
  }
  const scenario = build(scenarioFromArgs(args));
  if (args.schedule !== undefined) return traceOne(scenario, args.schedule as string, json, out);

  // A known bug is run at the bound its row gives, unless --bound says otherwise.
  const bound = (args.bound as number | undefined) ?? (args.bug !== undefined ? findBug(args.bug as string)?.bound : undefined) ?? 2;
  const reduce = args['no-reduce'] !== true;
  const maxSeconds = args['max-seconds'] as number | undefined;
  const maxInterleavings = args['max-interleavings'] as number | undefined;
  // The explorer reports once a second; each report is drawn (or logged) as it comes.
  const progress = args.quiet === true ? null : new ProgressLine(io.err, { label: 'check', unit: 'interleavings', total: maxInterleavings, everyMs: 0, redrawMs: 0 });
  const limit = maxSeconds !== undefined ? `PARTIAL if not done in ${maxSeconds}s` : maxInterleavings !== undefined ? 'PARTIAL if not done by then' : undefined;
  const r = await exploreParallel(scenario.options, {
    bound, reduce, sleepSets: reduce, jobs: args.jobs as number, maxSeconds, maxInterleavings,
    onProgress: progress === null ? undefined : (p) => progress.update(p.interleavings, progressDetail(p, limit)),
  });
  progress?.end();
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
  out(`invariants: ${checkedInvariants(scenario.options).join(', ')}`);
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
