/**
 * The command-line table: every command is one `CommandSpec` (its options, positionals, help
 * prose and handler), and both the parser and the help text are made from it, so `--help`
 * cannot drift from what is parsed. Tokenising is `node:util` parseArgs; this file adds what
 * it lacks: one rule and one message for numbers, help that wins over every other error, and
 * a stray argument or unknown option reported as a usage error (exit 2). A CLI framework
 * (commander, yargs) would generate help too, but with its own layout and wording, per-option
 * number parsers, and errors raised before help is considered; what it would save here is the
 * help renderer below, a few dozen lines.
 *
 * To add an option: add one `OptionSpec` to the command's `options` array (in
 * `src/cli/<command>-command.ts`) and read `args['its-name']` in the handler. A `default` is
 * applied by the parser and shown in the help; `defaultText` is only shown (for defaults the
 * library computes). Give `min`/`max` for numbers, `choices` for closed sets, `accepts` +
 * `validate` for anything else.
 *
 * To add a command: write `src/cli/<name>-command.ts` exporting a `CommandSpec` and list it in
 * `COMMANDS` (src/cli/commands.ts); `help`, `--help`, `-h` and `help <name>` come with it.
 */
import { parseArgs as tokenize } from 'node:util';

/** A bad command line: main prints the message on one line and exits with code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface OptionSpec {
  /** Long name without the dashes: `--frames` is 'frames'. */
  name: string;
  /**
   * 'flag' takes no value; 'string' one word; 'int' a decimal integer; 'size' a byte count,
   * a decimal integer with an optional k, m or g suffix (binary multiples).
   */
  type: 'flag' | 'string' | 'int' | 'size';
  /** One-letter alias, without the dash. */
  short?: string;
  /** The value's name in the help (default: N, SIZE, the choices, or VALUE). */
  value?: string;
  /** Applied when the option is absent, and shown in the help. */
  default?: string | number | boolean;
  /** Shown in the help as the default, not applied (the library decides). */
  defaultText?: string;
  /** One or more sentences for the help; wrapped when printed. */
  description: string;
  /** For 'int' and 'size': inclusive bounds (default 0 and Number.MAX_SAFE_INTEGER). */
  min?: number;
  max?: number;
  /** For 'string': the allowed values. */
  choices?: readonly string[];
  /** For 'string': what `validate` accepts, as the error message says it ("a ws:// URL"). */
  accepts?: string;
  validate?: (value: string) => boolean;
  /** A heading printed above this option and the ones after it in the help. */
  group?: string;
  /** For 'string': may be given more than once; the value is then the array of them, in order. */
  multiple?: boolean;
}

export interface PositionalSpec {
  /** As shown in the usage line, e.g. 'ws://HOST:PORT'. */
  name: string;
  description: string;
}

export type OptionValue = string | number | boolean | string[] | undefined;
export type Values = Record<string, OptionValue>;

export interface Terminal {
  write(text: string): void;
  /** A terminal that redraws in place (a bar), rather than a log or a pipe (plain lines). */
  readonly isTTY: boolean;
  readonly columns: number | undefined;
}

export interface CommandIo {
  /** Results: one line on stdout. */
  out(line: string): void;
  /** Diagnostics and progress: stderr. */
  err: Terminal;
}

export interface CommandSpec {
  name: string;
  /** One line for the command list of `vgpu-dirty help`. */
  summary: string;
  /** Usage lines after 'vgpu-dirty ' (default: '<name> [options]'). */
  usage?: readonly string[];
  /** Prose between the usage and the options (paragraphs separated by blank lines). */
  description: string;
  positionals?: readonly PositionalSpec[];
  options: readonly OptionSpec[];
  /** Prose after the options: notes, exit codes. */
  epilogue?: string;
  run(args: Values, positionals: readonly string[], io: CommandIo): Promise<number> | number;
}

/** Every command takes -h/--help. */
export const HELP_OPTION: OptionSpec = { name: 'help', short: 'h', type: 'flag', description: 'show this help and exit' };

const optionsOf = (spec: CommandSpec): readonly OptionSpec[] => [...spec.options, HELP_OPTION];

export type Parsed = { help: true } | { help: false; values: Values; positionals: string[] };

/**
 * Parses `argv` (what follows the command name) against the command's table. `-h`/`--help`
 * anywhere as an option wins over every error; otherwise the first problem throws UsageError.
 */
export function parseCommandLine(spec: CommandSpec, argv: readonly string[]): Parsed {
  const options = optionsOf(spec);
  const byName = new Map(options.map((o) => [o.name, o]));
  const config = Object.fromEntries(options.map((o) => [o.name, { type: o.type === 'flag' ? 'boolean' : 'string', ...(o.short ? { short: o.short } : {}) }])) as Record<
    string,
    { type: 'boolean' | 'string'; short?: string }
  >;
  // Not strict: parseArgs' own errors (e.g. "argument is ambiguous" for `--port -1`) would
  // pre-empt help and ours; every token is checked below instead.
  const { tokens } = tokenize({ args: [...argv], options: config, strict: false, allowPositionals: true, tokens: true });
  if (tokens.some((t) => t.kind === 'option' && t.name === HELP_OPTION.name)) return { help: true };
  const values: Values = {};
  const positionals: string[] = [];
  for (const t of tokens) {
    if (t.kind === 'positional') {
      if (positionals.length >= (spec.positionals?.length ?? 0)) throw new UsageError(`unexpected argument '${t.value}'`);
      positionals.push(t.value);
      continue;
    }
    if (t.kind !== 'option') continue;
    const o = byName.get(t.name);
    if (o === undefined) throw new UsageError(`unknown option ${t.rawName}`);
    const flag = t.rawName.startsWith('--') ? t.rawName : `${t.rawName} (--${o.name})`;
    if (o.type === 'flag') {
      if (t.value !== undefined) throw new UsageError(`${flag} takes no value`);
      values[o.name] = true;
    } else {
      if (t.value === undefined) throw new UsageError(`--${o.name} needs a value: ${accepts(o)}`);
      const v = convert(o, t.value);
      values[o.name] = o.multiple === true ? [...((values[o.name] as string[] | undefined) ?? []), v as string] : v;
    }
  }
  Object.defineProperty(values, GIVEN, { value: new Set(Object.keys(values)), enumerable: false });
  for (const o of options) if (values[o.name] === undefined && o.default !== undefined) values[o.name] = o.default;
  return { help: false, values, positionals };
}

const GIVEN = Symbol('options given');

/** The options the command line gave (defaults aside); every option present when `values` was not parsed from one. */
export function givenOptions(values: Values): ReadonlySet<string> {
  return (values as { [GIVEN]?: Set<string> })[GIVEN] ?? new Set(Object.keys(values).filter((k) => values[k] !== undefined));
}

/** What the option accepts, as its error message and help say it. */
function accepts(o: OptionSpec): string {
  if (o.type === 'int' || o.type === 'size') {
    const what = o.type === 'int' ? 'an integer' : 'a byte count (an integer, optionally with k, m or g)';
    const min = o.min ?? 0;
    return `${what} >= ${min}${o.max !== undefined ? ` and <= ${o.max}` : ''}`;
  }
  if (o.choices !== undefined) return `one of ${o.choices.join(', ')}`;
  return o.accepts ?? 'a value';
}

const SIZE_SUFFIX: Readonly<Record<string, number>> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 };

/** The one number rule: decimal digits only (sizes: and a k/m/g suffix), within the bounds. */
function convert(o: OptionSpec, text: string): string | number {
  const bad = (): UsageError => new UsageError(`--${o.name} must be ${accepts(o)}, got '${text}'`);
  if (o.type === 'int' || o.type === 'size') {
    const m = (o.type === 'int' ? /^(\d+)()$/ : /^(\d+)([kmg]?)$/i).exec(text);
    if (m === null) throw bad();
    const n = Number(m[1]) * SIZE_SUFFIX[m[2]!.toLowerCase()]!;
    if (!Number.isSafeInteger(n) || n < (o.min ?? 0) || n > (o.max ?? Number.MAX_SAFE_INTEGER)) throw bad();
    return n;
  }
  if (o.choices !== undefined && !o.choices.includes(text)) throw bad();
  if (o.validate !== undefined && !o.validate(text)) throw bad();
  return text;
}

const WIDTH = 79;
const LEFT = 24;

/** Word-wraps `text` to WIDTH columns, every line after the first indented by `indent`. */
function wrap(text: string, first: number, indent: number): string[] {
  const lines: string[] = [];
  let line = '';
  let room = WIDTH - first;
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && line.length + 1 + word.length > room) {
      lines.push(line);
      line = '';
      room = WIDTH - indent;
    }
    line = line === '' ? word : `${line} ${word}`;
  }
  lines.push(line);
  return lines.map((l, i) => (i === 0 ? l : ' '.repeat(indent) + l));
}

function valueName(o: OptionSpec): string {
  if (o.value !== undefined) return o.value;
  if (o.choices !== undefined) return o.choices.join('|');
  return o.type === 'int' ? 'N' : o.type === 'size' ? 'SIZE' : 'VALUE';
}

function optionHelp(o: OptionSpec): string[] {
  const left = `  ${o.short ? `-${o.short}, ` : ''}--${o.name}${o.type === 'flag' ? '' : ` ${valueName(o)}`}`;
  const notes: string[] = [];
  if (o.type === 'int' || o.type === 'size') {
    // Bounds past 2^31 are "no bound" to a reader.
    const max = o.max !== undefined && o.max < 2 ** 31 ? o.max : undefined;
    if (max !== undefined) notes.push(`${o.min ?? 0}..${max}`);
    else if ((o.min ?? 0) > 0) notes.push(`at least ${o.min}`);
  }
  // Choices the value name does not show and the description does not name.
  if (o.value !== undefined && o.choices !== undefined && !o.choices.every((c) => o.description.includes(c))) notes.push(`one of ${o.choices.join(', ')}`);
  const shown = o.defaultText ?? (o.default !== undefined && o.type !== 'flag' ? String(o.default) : undefined);
  if (shown !== undefined) notes.push(`default ${shown}`);
  if (o.multiple === true) notes.push('may be repeated');
  const text = notes.length > 0 ? `${o.description} (${notes.join('; ')})` : o.description;
  if (left.length + 2 > LEFT) return [left, ...wrap(text, LEFT, LEFT).map((l, i) => (i === 0 ? ' '.repeat(LEFT) + l : l))];
  const [head, ...rest] = wrap(text, LEFT, LEFT);
  return [left.padEnd(LEFT) + head, ...rest];
}

/** Paragraphs are re-wrapped; lines that start with spaces (tables, lists) are kept as written. */
export function prose(text: string): string[] {
  const out: string[] = [];
  for (const para of text.trim().split(/\n\s*\n/)) {
    if (out.length > 0) out.push('');
    if (/^ /m.test(para)) out.push(...para.split('\n'));
    else out.push(...wrap(para.replace(/\n/g, ' '), 0, 0));
  }
  return out;
}

/** The command's help, made from its table. */
export function commandHelp(spec: CommandSpec): string {
  const usage = spec.usage ?? [[spec.name, ...(spec.positionals ?? []).map((p) => `<${p.name}>`), '[options]'].join(' ')];
  const lines = usage.map((u, i) => `${i === 0 ? 'Usage: ' : '       '}vgpu-dirty ${u}`);
  lines.push('', ...prose(spec.description));
  if (spec.positionals !== undefined && spec.positionals.length > 0) {
    lines.push('', 'Arguments:');
    for (const p of spec.positionals) {
      const left = `  ${p.name}`;
      const [head, ...rest] = wrap(p.description, LEFT, LEFT);
      lines.push(left.length + 2 > LEFT ? left : left.padEnd(LEFT) + head, ...(left.length + 2 > LEFT ? [' '.repeat(LEFT) + head] : []), ...rest);
    }
  }
  lines.push('', 'Options:');
  let group: string | undefined;
  const grouped = spec.options.some((o) => o.group !== undefined);
  for (const o of grouped ? [...spec.options, { ...HELP_OPTION, group: 'other' }] : optionsOf(spec)) {
    if (o.group !== undefined && o.group !== group) {
      group = o.group;
      lines.push(` ${group}:`);
    }
    lines.push(...optionHelp(o));
  }
  if (spec.epilogue !== undefined) lines.push('', ...prose(spec.epilogue));
  return lines.join('\n');
}

/** Runs one command: its help if asked for (exit 0), else its handler with the parsed values. */
export async function execute(spec: CommandSpec, argv: readonly string[], io: CommandIo): Promise<number> {
  const parsed = parseCommandLine(spec, argv);
  if (parsed.help) {
    io.out(commandHelp(spec));
    return 0;
  }
  return spec.run(parsed.values, parsed.positionals, io);
}

/** A device URL: spread into an option (`{ name: 'device', type: 'string', ...WS_URL }`). */
export const WS_URL = { accepts: 'a ws:// or wss:// URL', validate: (v: string): boolean => /^wss?:\/\/./.test(v) } as const;
