import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type MachineOptions, VgpuError } from '../../core/index.js';
import { BUILTIN_STRATEGIES, BUILTIN_STRATEGY_NAMES, isBuiltinStrategy } from './builtin.js';
import type { DirtyStrategy, DirtyTracker } from './contract.js';

/** Why a strategy spec could not become a strategy. */
export type StrategyErrorReason =
  /** Not a built-in name, and not a module path. */
  | 'unknown'
  /** A module path with no file there. */
  | 'not-found'
  /** Importing the module threw (a syntax error, an exception at its top level, a missing import). */
  | 'load-failed'
  /** The module has no default export and no `strategy` export, or it is not a strategy object. */
  | 'bad-export'
  /**
   * A tracker the strategy made lacks methods of the DirtyTracker contract, or the strategy's
   * code threw an untyped exception (a TypeError, a plain Error) making or setting one up.
   */
  | 'bad-tracker'
  /** The strategy cannot run here (its backing, machine features or memory are not what this driver has). */
  | 'unsupported';

/** A strategy spec was refused; `reason` says which of the cases above, `spec` what was given. */
export class StrategyError extends VgpuError {
  constructor(readonly reason: StrategyErrorReason, readonly spec: string, message: string) {
    super('ESTRATEGY', message);
  }
}

/** A spec names a module rather than a built-in: a path (relative or absolute), a file: URL, or a .js/.mjs/.cjs file. */
export function isModuleSpec(spec: string): boolean {
  return spec.startsWith('.') || spec.startsWith('file:') || isAbsolute(spec) || /[\\/]/.test(spec) || /\.[cm]?js$/.test(spec);
}

/**
 * Turn a strategy spec into what the driver takes (DriverOptions.strategy,
 * MainJobOptions.strategy): a built-in name ('adaptive', 'pagetable',
 * 'mkwrite', 'full', 'soft-dirty', 'uffd-wp'), a module path (relative to
 * `cwd`, default the process's) whose default export (or `strategy`
 * export) is a DirtyStrategy, or a DirtyStrategy object (checked and
 * returned). Rejects with StrategyError.
 */
export async function resolveStrategy(spec: string | DirtyStrategy, opts: { cwd?: string } = {}): Promise<DirtyStrategy> {
  if (typeof spec !== 'string') return checkStrategy(spec, String((spec as { name?: unknown })?.name ?? 'strategy object'));
  if (isBuiltinStrategy(spec)) return BUILTIN_STRATEGIES[spec];
  if (!isModuleSpec(spec)) {
    throw new StrategyError('unknown', spec, `unknown strategy '${spec}': built-in ones are ${BUILTIN_STRATEGY_NAMES.join(', ')}; a module path starts with ./ or /`);
  }
  const url = spec.startsWith('file:') ? new URL(spec) : pathToFileURL(resolve(opts.cwd ?? process.cwd(), spec));
  try {
    if (!statSync(url).isFile()) throw new Error('not a file');
  } catch {
    throw new StrategyError('not-found', spec, `strategy module '${spec}' not found (looked for ${url.pathname})`);
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url.href)) as Record<string, unknown>;
  } catch (e) {
    const why = e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e);
    throw new StrategyError('load-failed', spec, `strategy module '${spec}' failed to load: ${why}`);
  }
  const exported = mod.default ?? mod.strategy;
  if (exported === undefined) {
    const names = Object.keys(mod);
    throw new StrategyError('bad-export', spec, `strategy module '${spec}' has no default export and no 'strategy' export (it exports ${names.length > 0 ? names.join(', ') : 'nothing'})`);
  }
  const strategy = checkStrategy(exported, spec);
  moduleOf.set(strategy, spec);
  return strategy;
}

/** The module spec each loaded strategy came from, for errors that name it. */
const moduleOf = new WeakMap<DirtyStrategy, string>();

/** 'name', or 'name' (module ./x.mjs) for a strategy loaded from a module. */
function describeStrategy(strategy: DirtyStrategy): string {
  const mod = moduleOf.get(strategy);
  return mod !== undefined ? `'${strategy.name}' (module ${mod})` : `'${strategy.name}'`;
}

/**
 * Run a call into strategy code (createTracker, mapped). A typed error
 * (VgpuError) passes as it is; anything else — a bug in a user's module —
 * becomes StrategyError 'bad-tracker' naming the strategy, its module and
 * the original message, so callers and the CLI see one typed line, not a stack.
 */
export function callStrategy<T>(strategy: DirtyStrategy, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof VgpuError) throw e;
    const why = e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e);
    const err = new StrategyError('bad-tracker', moduleOf.get(strategy) ?? strategy.name, `strategy ${describeStrategy(strategy)} threw in ${what}: ${why}`);
    err.cause = e;
    throw err;
  }
}

/** What a DirtyStrategy object must have; returns it typed, or throws StrategyError 'bad-export'. */
export function checkStrategy(s: unknown, spec: string): DirtyStrategy {
  const bad = (what: string) => new StrategyError('bad-export', spec, `strategy '${spec}' is not a DirtyStrategy: ${what}`);
  if (typeof s !== 'object' || s === null) throw bad(`expected an object with name and createTracker, got ${s === null ? 'null' : typeof s}`);
  const o = s as Record<string, unknown>;
  if (typeof o.name !== 'string' || o.name.length === 0) throw bad('name must be a non-empty string');
  if (typeof o.createTracker !== 'function') throw bad('createTracker must be a function (bo, env) => DirtyTracker');
  if (o.backing !== undefined && o.backing !== 'device' && o.backing !== 'shmem') throw bad(`backing must be 'device' or 'shmem', got ${JSON.stringify(o.backing)}`);
  if (o.machine !== undefined && (typeof o.machine !== 'object' || o.machine === null)) throw bad('machine must be an object ({ softDirty?: boolean })');
  if (o.realMemory !== undefined && typeof o.realMemory !== 'boolean') throw bad('realMemory must be a boolean');
  return s as DirtyStrategy;
}

const TRACKER_METHODS = ['mapWritable', 'mkwrite', 'scan', 'beforeUnmap', 'takeDirty', 'clearDirty', 'markDirty', 'peekDirty'] as const;

/** A tracker a strategy made must have every method the driver calls; throws StrategyError 'bad-tracker'. */
export function checkTracker(t: unknown, strategy: DirtyStrategy): DirtyTracker {
  const o = t as Record<string, unknown> | null;
  const missing = typeof o !== 'object' || o === null ? [...TRACKER_METHODS] : TRACKER_METHODS.filter((m) => typeof o[m] !== 'function');
  if (missing.length > 0) {
    throw new StrategyError('bad-tracker', strategy.name, `strategy '${strategy.name}' made a tracker without ${missing.join(', ')} (the DirtyTracker contract, docs/strategies.md)`);
  }
  return t as DirtyTracker;
}

/** The machine options a strategy needs (soft-dirty needs a machine built with it). */
export function strategyMachineOptions(strategy: DirtyStrategy): Partial<MachineOptions> {
  return strategy.machine?.softDirty === true ? { softDirty: true } : {};
}
