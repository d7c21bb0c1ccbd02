// The command list and the dispatcher. A new command is one `CommandSpec` in its own
// `<name>-command.ts` plus one entry in COMMANDS (see the comment at the top of options.ts).
import { readFileSync } from 'node:fs';
import { CHECK } from './check-command.js';
import { COMPARE } from './compare-command.js';
import { CONFORMANCE } from './conformance-command.js';
import { DEMO } from './demo.js';
import { DEVICE } from './device-command.js';
import { DIFFTEST } from './difftest-command.js';
import { type CommandIo, type CommandSpec, UsageError, commandHelp, execute, prose } from './options.js';
import { REPLAY } from './replay-command.js';
import { RUN } from './run-command.js';
import { SOAK } from './soak-command.js';

const HELP: CommandSpec = {
  name: 'help',
  summary: "the command list; 'vgpu-dirty help <command>' shows a command's options",
  positionals: [{ name: 'command', description: 'the command whose help to show' }],
  description: "Without a command, lists the commands; with one, shows that command's usage and options (the same text as 'vgpu-dirty <command> --help').",
  options: [],
  run: (_args, [name], io) => {
    if (name === undefined) io.out(overview());
    else io.out(commandHelp(find(name)));
    return 0;
  },
};

/** In the order `vgpu-dirty help` lists them; the first is the default command. */
export const COMMANDS: readonly CommandSpec[] = [RUN, DEMO, CHECK, DEVICE, DIFFTEST, SOAK, CONFORMANCE, REPLAY, COMPARE, HELP];
const DEFAULT_COMMAND = RUN;

function find(name: string): CommandSpec {
  const spec = COMMANDS.find((c) => c.name === name);
  if (spec === undefined) throw new UsageError(`unknown command '${name}' (one of ${COMMANDS.map((c) => c.name).join(', ')})`);
  return spec;
}

/** `vgpu-dirty help`: what each command does and where its options are. */
export function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 4;
  const lines = [
    'vgpu-dirty — simulated MMU dirty tracking, vmwgfx-style driver and a fake GPU device',
    '',
    'Usage: vgpu-dirty [<command>] [options]',
    '       vgpu-dirty help <command>',
    '       vgpu-dirty --version',
    '',
    'Commands:',
  ];
  for (const c of COMMANDS) {
    let line = `  ${c.name.padEnd(width - 2)}`;
    for (const word of c.summary.split(' ')) {
      if (line.trim() !== c.name && line.length + 1 + word.length > 79) {
        lines.push(line);
        line = ' '.repeat(width);
      }
      line += line.endsWith(' ') ? word : ` ${word}`;
    }
    lines.push(line);
  }
  lines.push('', ...prose(`Options: every command has its own; 'vgpu-dirty help <command>' or 'vgpu-dirty <command> --help' lists them. With no command, or when the first argument is an option ('vgpu-dirty --frames 60'), the command is '${DEFAULT_COMMAND.name}'.

Exit codes: 0 success, 1 a check failed, 2 bad arguments, 3 a check stopped at a limit (partial).`));
  return lines.join('\n');
}

/** The package's version, from the package.json that ships beside dist/. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * The whole command line: picks the command, parses its options, runs it. A usage error is one
 * line on stderr and exit code 2; everything else a handler throws goes to the caller.
 */
export async function runCli(argv: readonly string[], io: CommandIo): Promise<number> {
  const first = argv[0];
  if (first === '--help' || first === '-h') return (io.out(overview()), 0);
  if (first === '--version' || first === '-V') return (io.out(version()), 0);
  // `vgpu-dirty --json` (and `npm start -- --frames 60`) run the default command with those options.
  const [name, ...rest] = first === undefined || first.startsWith('-') ? [DEFAULT_COMMAND.name, ...argv] : argv;
  let spec: CommandSpec | undefined;
  try {
    spec = find(name!);
    return await execute(spec, rest, io);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    const where = spec === undefined || spec === HELP ? 'vgpu-dirty help' : `vgpu-dirty help ${spec.name}`;
    io.err.write(`vgpu-dirty${spec !== undefined ? ` ${spec.name}` : ''}: ${e.message} (see '${where}')\n`);
    return 2;
  }
}
