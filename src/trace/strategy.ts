import type { MachineOptions } from '../core/index.js';
import type { DirtyStrategy } from '../driver/strategies/contract.js';
import { resolveStrategy, strategyMachineOptions } from '../driver/strategies/loader.js';

/** What a strategy means for a replay: the strategy the driver uses and what it asks of the machine. */
export interface StrategyPlan {
  name: string;
  strategy: DirtyStrategy;
  machine: Partial<MachineOptions>;
}

/**
 * The one place where a strategy given to a replay or to `compare` (a
 * built-in name, a module path, or a DirtyStrategy) becomes driver
 * configuration: the driver's own loader, so a replay means what the main
 * job means by the same name. Rejects with StrategyError for a spec it
 * cannot load.
 */
export async function strategyPlan(spec: string | DirtyStrategy): Promise<StrategyPlan> {
  const strategy = await resolveStrategy(spec);
  return { name: strategy.name, strategy, machine: strategyMachineOptions(strategy) };
}
