import { type CommandIo, type CommandSpec, type Values, commandHelp, execute } from './options.js';
import { ProgressLine, lineIo } from './progress.js';
import { DEFAULT_RUNS, formatSummary, formatViolation, soak } from '../soak/index.js';

export const SOAK: CommandSpec = {
  name: 'soak',
  summary: 'seeded fault simulator: random programs and device faults, invariants checked at every step; a seed replays a failure',
  description: `A deterministic fault simulator (docs/reliability.md). Each run derives everything from its seed: the machine (CPUs, x86 or sw-dirty, 4 or 1 KiB pages), the device's limits, the driver's writeback settings and encoding, its dirty-tracking strategy (every built-in in turn: adaptive, pagetable, mkwrite, soft-dirty, uffd-wp, full), buffer objects (buffers and surfaces, several per BO, mapped into several processes) and a program of CPU writes (sync and async), device writes, flushes (awaited or left in flight), munmap, mmap, destroyBo, and faults from the device's facilities: a failed command, a dropped connection, delayed fences, a stall, a device gone silent, a restart that loses all state, another session holding the device's memory, a refused define or destroy. Every run has its own device, machine and driver.

Invariants, checked as the run goes:
  flush-holds-writes   when flush() resolves, every page the CPUs wrote before
                       it was called, and nobody wrote since, is on the device
                       (compared inside the device, bytes covered by resources)
  guest-keeps-writes   guest memory holds every CPU write and every device
                       write it was told about
  converges            once the faults stop, flushing at 60 Hz makes the device
                       copy coherent within 3 s, with no other user action
  bounded-waits        no flush, fence, connect or close waits longer than
                       --hang-ms
  no-unhandled-errors  no unhandled rejection, no uncaught exception

A violation prints the seed, the step, the invariant and what differed, and the command that replays it. Runs use seeds N, N+1, … Progress (runs, rate, ETA, violations so far) goes to stderr unless --json or --trace: a bar on a terminal, a line every 5 s otherwise.`,
  options: [
    { name: 'seed', type: 'int', min: 0, max: Number.MAX_SAFE_INTEGER, default: 1, description: 'first seed' },
    { name: 'runs', type: 'int', min: 1, max: 100_000_000, defaultText: `${DEFAULT_RUNS}, or unlimited with --seconds`, description: 'number of runs' },
    { name: 'seconds', type: 'int', min: 1, max: 7 * 24 * 3600, description: 'start no run after N seconds' },
    { name: 'repeat', type: 'int', min: 1, max: 10_000, description: 'run every seed N times (how reliably a seed replays)' },
    { name: 'hang-ms', type: 'int', min: 100, max: 600_000, defaultText: '5000', description: 'bound of every wait, in ms' },
    { name: 'trace', type: 'flag', description: 'print every step and every flush outcome (use with --runs 1)' },
    { name: 'no-faults', type: 'flag', description: 'the same workloads without their fault steps (tells a workload bug from a recovery bug)' },
    { name: 'json', type: 'flag', description: 'one JSON object: runs, steps, faults (by kind), faultsInjected, flushesChecked, flushesRejected, lostPages, hangs, violations, seconds, …' },
  ],
  epilogue: 'Exit codes: 0 no violation, 1 a violation, 2 bad arguments.',
  run: (args, _positionals, io) => soakRuns(args, io),
};

export const SOAK_HELP = commandHelp(SOAK);

/** `vgpu-dirty soak ARGV` in this process, with results to `out` and progress lines to `err`. */
export const soakCommand = (argv: readonly string[], out: (line: string) => void, err?: (line: string) => void): Promise<number> => execute(SOAK, argv, lineIo(out, err));

async function soakRuns(a: Values, io: CommandIo): Promise<number> {
  const out = io.out;
  const json = a.json === true;
  const runs = a.runs as number | undefined;
  const seconds = a.seconds as number | undefined;
  const total = runs ?? (seconds === undefined ? DEFAULT_RUNS : undefined);
  const progress = json || a.trace === true ? null : new ProgressLine(io.err, { label: 'soak', unit: 'runs', total });
  let done = 0;
  let violations = 0;
  const summary = await soak({
    seed: a.seed as number,
    runs,
    seconds,
    repeat: a.repeat as number | undefined,
    hangMs: a['hang-ms'] as number | undefined,
    faults: a['no-faults'] !== true,
    trace: a.trace === true && !json ? out : undefined,
    onRun: (r) => {
      done++;
      if (r.violation !== null) {
        violations++;
        if (!json) {
          progress?.clear();
          for (const line of formatViolation(r.violation)) out(line);
        }
      }
      progress?.update(done, `seed ${r.seed}, ${violations} violation(s)`);
    },
  });
  progress?.end();
  if (json) out(JSON.stringify(summary));
  else for (const line of formatSummary(summary)) out(line);
  return summary.violations.length === 0 ? 0 : 1;
}
