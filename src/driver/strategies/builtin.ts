import type { DirtyStrategy } from './contract.js';
import { fullStrategy } from './full.js';
import { softDirtyStrategy } from './soft-dirty.js';
import { uffdWpStrategy } from './uffd-wp.js';
import { adaptiveStrategy, mkwriteStrategy, pagetableStrategy } from './vmwgfx.js';

/** The built-in strategies by name, in the order reports list them. */
export const BUILTIN_STRATEGIES = {
  adaptive: adaptiveStrategy,
  pagetable: pagetableStrategy,
  mkwrite: mkwriteStrategy,
  full: fullStrategy,
  'soft-dirty': softDirtyStrategy,
  'uffd-wp': uffdWpStrategy,
} as const satisfies Record<string, DirtyStrategy>;

export type BuiltinStrategyName = keyof typeof BUILTIN_STRATEGIES;
export const BUILTIN_STRATEGY_NAMES = Object.keys(BUILTIN_STRATEGIES) as BuiltinStrategyName[];

export function isBuiltinStrategy(name: string): name is BuiltinStrategyName {
  return Object.hasOwn(BUILTIN_STRATEGIES, name);
}
