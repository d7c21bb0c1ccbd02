/**
 * Minimal, strict argument parsing shared by every subcommand: `--name value`,
 * `--name=value` and boolean `--flag`. Unknown options and bad values raise
 * UsageError, which the entry point reports with exit code 2.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface OptionSpec {
  /** 'flag' takes no value; 'string' and 'int' take one. */
  type: 'flag' | 'string' | 'int';
  /** For 'int': inclusive bounds. */
  min?: number;
  max?: number;
  /** For 'string': allowed values. */
  choices?: readonly string[];
}

export type ParsedArgs = Record<string, string | number | boolean | undefined>;

export function parseArgs(argv: readonly string[], spec: Record<string, OptionSpec>): ParsedArgs {
  const out: ParsedArgs = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument '${arg}'`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const s = spec[name];
    if (s === undefined) throw new UsageError(`unknown option --${name}`);
    if (s.type === 'flag') {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      out[name] = true;
      continue;
    }
    let value: string | undefined = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    if (s.type === 'int') {
      const n = Number(value);
      if (!Number.isInteger(n) || (s.min !== undefined && n < s.min) || (s.max !== undefined && n > s.max)) {
        throw new UsageError(`--${name} must be an integer${s.min !== undefined ? ` >= ${s.min}` : ''}${s.max !== undefined ? ` and <= ${s.max}` : ''}, got '${value}'`);
      }
      out[name] = n;
    } else {
      if (s.choices && !s.choices.includes(value)) throw new UsageError(`--${name} must be one of ${s.choices.join(', ')}, got '${value}'`);
      out[name] = value;
    }
    value = undefined;
  }
  return out;
}
