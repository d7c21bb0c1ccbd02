import { parseArgs } from './args.js';
import { DEFAULT_RUNS, formatSummary, formatViolation, soak } from '../soak/index.js';

export const SOAK_HELP = `vgpu-dirty soak [--seed N] [--runs N] [--seconds N] [--json] [--trace]
                [--repeat N] [--hang-ms N] [--no-faults]

A deterministic fault simulator (docs/reliability.md). Each run derives
everything from its seed: the machine (CPUs, x86 or sw-dirty, 4 or 1 KiB
pages), the device's limits, the driver's writeback settings, buffer objects
(buffers and surfaces, several per BO, mapped into several processes, tracked
with PAGETABLE and MKWRITE) and a program of CPU writes (sync and async),
device writes, flushes (awaited or left in flight), munmap, mmap, destroyBo,
and faults from the device's facilities: a failed command, a dropped
connection, delayed fences, a stall, a device gone silent, a restart that
loses all state, another session holding the device's memory, a refused
define or destroy. Every run has its own device, machine and driver.

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

A violation prints the seed, the step, the invariant and what differed, and
the command that replays it. Runs use seeds N, N+1, …

  --seed N      first seed (default 1)
  --runs N      number of runs (default ${DEFAULT_RUNS}, or unlimited with --seconds)
  --seconds N   start no run after N seconds
  --repeat N    run every seed N times (how reliably a seed replays)
  --hang-ms N   bound of every wait, in ms (default 5000)
  --trace       print every step and every flush outcome (use with --runs 1)
  --no-faults   the same workloads without their fault steps (tells a
                workload bug from a recovery bug)
  --json        one JSON object: runs, steps, faults (by kind), faultsInjected,
                flushesChecked, flushesRejected, lostPages, hangs, violations,
                seconds, …

Exit codes: 0 no violation, 1 a violation, 2 bad arguments.`;

export async function soakCommand(argv: readonly string[], out: (line: string) => void): Promise<number> {
  const a = parseArgs(argv, {
    seed: { type: 'int', min: 0, max: Number.MAX_SAFE_INTEGER },
    runs: { type: 'int', min: 1, max: 100_000_000 },
    seconds: { type: 'int', min: 1, max: 7 * 24 * 3600 },
    repeat: { type: 'int', min: 1, max: 10_000 },
    'hang-ms': { type: 'int', min: 100, max: 600_000 },
    trace: { type: 'flag' },
    'no-faults': { type: 'flag' },
    json: { type: 'flag' },
    help: { type: 'flag' },
  });
  if (a.help) {
    out(SOAK_HELP);
    return 0;
  }
  const json = a.json === true;
  const tty = process.stderr.isTTY && !json && a.trace !== true;
  const summary = await soak({
    seed: (a.seed as number | undefined) ?? 1,
    runs: a.runs as number | undefined,
    seconds: a.seconds as number | undefined,
    repeat: a.repeat as number | undefined,
    hangMs: a['hang-ms'] as number | undefined,
    faults: a['no-faults'] !== true,
    trace: a.trace === true && !json ? out : undefined,
    onRun: (r) => {
      if (tty) process.stderr.write(`\r\x1b[Kseed ${r.seed}`);
      if (r.violation !== null && !json) {
        if (tty) process.stderr.write('\r\x1b[K');
        for (const line of formatViolation(r.violation)) out(line);
      }
    },
  });
  if (tty) process.stderr.write('\r\x1b[K');
  if (json) out(JSON.stringify(summary));
  else for (const line of formatSummary(summary)) out(line);
  return summary.violations.length === 0 ? 0 : 1;
}
