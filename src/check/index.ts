/**
 * The interleaving checker: scenarios, the explorer, invariants, schedules
 * and readable counterexamples. No I/O (the CLI lives in src/cli/check-command.ts).
 */
export * from './counterexample.js';
export { CONTINUE, Execution, Outcome, type DecisionSource, type ExecutionTracer } from './execution.js';
export * from './explorer.js';
export * from './invariants.js';
export * from './scenario.js';
export * from './schedule.js';
export { StateHasher, VisitedStates, WorldView } from './state.js';
export { PAGE_SIZE, World } from './world.js';
