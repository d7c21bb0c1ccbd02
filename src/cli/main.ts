#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { VgpuError } from '../core/index.js';
import { UsageError } from './args.js';
import { DEMO_HELP, demoCommand } from './demo.js';
import { CHECK_HELP, checkCommand } from './check-command.js';
import { CONFORMANCE_HELP, conformanceCommand } from './conformance-command.js';
import { deviceCommand } from './device-command.js';
import { DIFFTEST_HELP, difftestCommand } from './difftest-command.js';
import { REPLAY_HELP, replayCommand } from './replay-command.js';
import { RUN_HELP, runCommand } from './run-command.js';
import { SOAK_HELP, soakCommand } from './soak-command.js';

const HELP = `vgpu-dirty — simulated MMU dirty tracking, vmwgfx-style driver and a fake GPU device

Usage: vgpu-dirty <command> [options]

Commands:
  run       the main job: framebuffer + vertex buffer, scripted multi-CPU
            workload synced at 60 Hz to a device, coherence checked (default)
  demo      map a buffer object into two processes, write from every CPU,
            clean-and-record, print the recorded pages and counters
  check     explore every interleaving of a small scenario and check the
            dirty-tracking invariants; print a counterexample when one fails
  device    run the fake GPU device server (WebSocket); prints
            'listening on ws://HOST:PORT' once ready
  difftest  run random programs on the simulated uffd-wp tracker and on the
            real Linux kernel and compare every scan (needs koffi)
  soak      seeded fault simulator: random programs and device faults,
            invariants checked at every step; a seed replays a failure
  conformance  check any device against docs/protocol.md, case by case
  replay    re-send a recorded session's frames to a device, print the replies
  help      this text; 'vgpu-dirty <command> --help' for a command's options

  --version prints the version

Exit codes: 0 success, 1 a check failed, 2 bad arguments, 3 a check stopped at a limit (partial).

${RUN_HELP}

${CHECK_HELP}

${SOAK_HELP}

${CONFORMANCE_HELP}

${REPLAY_HELP}

${DEMO_HELP}

${DIFFTEST_HELP}`;

/** Options of the program itself; any other leading option belongs to the default command, run. */
const OWN_OPTIONS = new Set(['--help', '-h', '--version', '-V']);

async function main(argv: string[]): Promise<number> {
  // `vgpu-dirty --json` (and `npm start -- --frames 60`) run the main job with those options.
  const args = argv.length > 0 && argv[0]!.startsWith('-') && !OWN_OPTIONS.has(argv[0]!) ? ['run', ...argv] : argv;
  const [command = 'run', ...rest] = args;
  const out = (line: string): void => void process.stdout.write(line + '\n');
  switch (command) {
    case 'run':
      return runCommand(rest, out);
    case 'demo':
      return demoCommand(rest, out);
    case 'check':
      return checkCommand(rest, out);
    case 'device':
      return deviceCommand(rest);
    case 'difftest':
      return difftestCommand(rest, out);
    case 'soak':
      return soakCommand(rest, out);
    case 'conformance':
      return conformanceCommand(rest, out);
    case 'replay':
      return replayCommand(rest, out);
    case 'help':
    case '--help':
    case '-h':
      out(HELP);
      return 0;
    case '--version':
    case '-V':
      out(version());
      return 0;
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

/** The package's version, from the package.json that ships beside dist/. */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

// A reader that goes away early (`vgpu-dirty check | head`) is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`vgpu-dirty: ${err.message}\nTry 'vgpu-dirty help'.\n`);
      process.exitCode = 2;
    } else if (err instanceof VgpuError) {
      // An expected outcome with a typed cause (device unreachable or refused, ...): one line.
      process.stderr.write(`vgpu-dirty: ${err.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`vgpu-dirty: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
