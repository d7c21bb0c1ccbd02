// Conformance suite for any device that speaks docs/protocol.md (see §14 there).
export { runConformance, formatResult, formatSummary, type CaseResult, type Report, type Status, type SuiteOptions } from './runner.js';
export { ALL_CASES } from './cases/index.js';
export { NotApplicable, type Case, type Ctx, type Need } from './case.js';
export { WireClient, show, type Closed } from './client.js';
