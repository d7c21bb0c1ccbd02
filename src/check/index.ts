/**
 * The interleaving checker: scenarios, the explorer, invariants, schedules
 * and readable counterexamples. No I/O (the CLI lives in src/cli/check-command.ts).
 */
export * from './bugs.js';
export * from './counterexample.js';
export { CONTINUE, Execution, Outcome, type Checkpoint, type DecisionSource, type ExecutionTracer } from './execution.js';
export * from './explorer.js';
export * from './invariants.js';
export { exploreParallel, type ParallelOptions } from './parallel.js';
export * from './scenario.js';
export * from './schedule.js';
export { Search, type SearchCounts, type Task } from './search.js';
export { PRUNED, SharedVisitedStates, type StateCache, StateHasher, VisitedStates, WorldView } from './state.js';
export { PAGE_SIZE, World } from './world.js';
